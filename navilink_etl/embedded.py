"""The CLI's embedded default: without credentials, collect from the offline fake cloud on 127.0.0.1.

Kept out of ``collect/`` so the collector never imports the simulator; ``collect`` passes
``embedded_cloud(...)`` as the collector's ``cloud``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from pydantic import SecretStr

from .config import NaviLinkConfig

log = logging.getLogger("navilink_etl.collect")

EMBEDDED_POLL_INTERVAL_S = 30  # the simulator's default poll: what the analytics tolerances assume


def embedded_cloud(*, devices: int = 2, speed: float = 60.0, seed: int = 0) -> Callable[
        [NaviLinkConfig], AbstractAsyncContextManager[tuple[NaviLinkConfig, Any, str]]]:
    """A ``cloud`` for ``run_collector``: the fake cloud with ``devices`` heaters, clock x``speed``."""

    @asynccontextmanager
    async def cloud(config: NaviLinkConfig) -> AsyncIterator[tuple[NaviLinkConfig, Any, str]]:
        log.info("No NaviLink credentials set (NAVILINK_EMAIL/NAVILINK_PASSWORD): running the EMBEDDED "
                 "SIMULATOR, an offline fake NaviLink cloud on 127.0.0.1 with %d simulated heater(s), "
                 "clock x%g. No real heater is read.", devices, speed)
        from .sim.cloud import FakeCloud

        async with FakeCloud(n_devices=devices, speed=speed, seed=seed, timezone=config.timezone) as fc:
            over = dict(fc.client_overrides())
            over["password"] = SecretStr(str(over["password"]))
            if "polling_interval" in config.model_fields_set:  # the user's choice wins
                over.pop("polling_interval", None)
            else:
                over["polling_interval"] = EMBEDDED_POLL_INTERVAL_S
            yield config.model_copy(update=over), fc.clock, "embedded"

    return cloud
