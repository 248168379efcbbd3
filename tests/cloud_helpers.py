"""Test helpers for the cloud client: the fake REST app on 127.0.0.1 with stub device records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from navilink_etl.sim.rest import FakeRest, TokenStore

EMAIL = "demo@example.com"
PASSWORD = "correct-horse-battery"


@dataclass
class StubDevice:
    """Just the identity a REST-only test needs (the DeviceModel attributes FakeRest reads)."""

    mac: str
    additional_value: str = "5322"
    home_seq: int = 25004
    device_name: str = "NWP500"
    firmware: str = "2025-09"
    volume_gal: int = 65
    _feature: dict[str, Any] = field(default_factory=lambda: {"controllerSerialNumber": "56496061BT22230408"})

    def feature(self) -> dict[str, Any]:
        return self._feature


def stub_devices(n: int) -> list[StubDevice]:
    return [StubDevice(mac=f"0478633200{i:02x}", home_seq=25000 + i) for i in range(n)]


@asynccontextmanager
async def fake_rest(devices: list[StubDevice], offline: set[str] | None = None) -> AsyncIterator[tuple[FakeRest, str]]:
    """FakeRest served on 127.0.0.1; yields (fake, base_url)."""
    offline = offline or set()
    fr = FakeRest(devices, {EMAIL: PASSWORD}, TokenStore(), lambda mac: mac not in offline)
    runner = web.AppRunner(fr.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fr, f"http://127.0.0.1:{port}/api/v2.1"
    finally:
        await runner.cleanup()

