"""Log redaction cost: registry size and microseconds per formatted record, after 1,000 token
refreshes against the fake REST API, compared with a registry that kept every token ever issued.

    python bench/bench_redact.py
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from navilink_etl import NaviLinkClient, NaviLinkConfig
from navilink_etl.redact import RedactingFormatter, SecretSet, live_secrets
from navilink_etl.sim.cloud import FakeCloud

REFRESHES = 1000


def cost_us(n: int = 20_000) -> float:
    fmt = RedactingFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "device 047863320001 status 120 F, 4500 W, "
                            "charge 80 %, nothing secret here", None, None)
    t0 = time.perf_counter()
    for _ in range(n):
        fmt.format(rec)
    return (time.perf_counter() - t0) / n * 1e6


async def main() -> None:
    async with FakeCloud(n_devices=1) as fc:
        fc.set_refresh_rotation(True)
        async with NaviLinkClient(config=NaviLinkConfig(**fc.client_overrides())) as c:
            await c.authenticate()
            print(f"after sign-in:      {len(live_secrets()):5d} live secrets, {cost_us():6.2f} us/record")
            for i in range(1, REFRESHES + 1):
                await c.auth.on_unauthorized(c.auth.tokens.access_token)  # type: ignore[union-attr]
                if i in (10, 100, 1000):
                    print(f"after {i:4d} refreshes: {len(live_secrets()):5d} live secrets, {cost_us():6.2f} us/record")
        print(f"after close():      {len(live_secrets()):5d} live secrets, {cost_us():6.2f} us/record")
    grown = SecretSet()  # what keeping every issued token would cost: 3 per refresh + 7 per sign-in
    for i in range(3 * REFRESHES + 7):
        grown.set(str(i), secrets.token_urlsafe(48))
    print(f"if it kept all:     {len(live_secrets()):5d} live secrets, {cost_us(2000):6.2f} us/record")


if __name__ == "__main__":
    asyncio.run(main())
