"""The package's own client against the fake cloud with simulated heaters: the embedded default path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson

from navilink_etl.config import load_config
from navilink_etl.protocol import Command, DhwMode, Event
from navilink_etl.sim.cloud import FakeCloud
from navilink_etl.sim.serve import export_lines, serve
from navilink_etl.status import NEWER_FIRMWARE_KEYS, STATUS_KEYS_2025_09, RawStatus


def _present(raw: RawStatus) -> set[str]:
    return {k for k, v in raw.values.items() if v is not None}


async def test_client_reads_status_feature_and_controls_two_simulated_heaters() -> None:
    start = datetime(2026, 1, 15, 6, tzinfo=UTC)
    async with FakeCloud(n_devices=2, speed=60, seed=7, start=start) as fc:
        from navilink_etl.cloud.client import NaviLinkClient

        config = load_config(**fc.client_overrides())
        async with NaviLinkClient(config=config) as client:
            await client.authenticate()
            devices = await client.get_devices()
            assert sorted(d.mac for d in devices) == sorted(d.mac for d in fc.devices)
            by_fw = {fc.device(d.mac).firmware: d for d in devices}
            old = await asyncio.wait_for(by_fw["2025-09"].get_status(), 10)
            new = await asyncio.wait_for(by_fw["2025-10"].get_status(), 10)
            assert old.raw["command"] == Command.STATUS and _present(old.raw) == set(STATUS_KEYS_2025_09)
            assert _present(new.raw) == set(STATUS_KEYS_2025_09) | set(NEWER_FIRMWARE_KEYS)
            events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            client.add_message_listener(lambda topic, payload, at: events.put_nowait(orjson.loads(payload)))
            echo = await asyncio.wait_for(by_fw["2025-09"].set_dhw_mode(DhwMode.HIGH_DEMAND), 10)
            assert echo.raw["command"] == Command.DHW_MODE
            assert echo.raw["dhwOperationSetting"] == DhwMode.HIGH_DEMAND
            await asyncio.wait_for(by_fw["2025-09"].set_temperature(149), 10)
            # raising the setpoint starts heating: the plant's relay/mode events arrive as pushes
            while True:
                msg = await asyncio.wait_for(events.get(), 10)
                command = msg.get("response", {}).get("status", {}).get("command")
                if command in (Event.RELAY_CHANGED, Event.OPERATION_MODE_CHANGED, Event.BUSY_CHANGED):
                    break
            assert len(msg["sessionID"]) == 1 and msg["sessionID"].isdigit() and msg["clientID"] == client.client_id
        assert fc.stats()["upgrades_accepted"] >= 1 and fc.stats()["upgrades_refused"] == 0
        assert fc.clock.now() > start


async def test_serve_prints_eval_able_exports_and_stops_on_cancel() -> None:
    lines: list[str] = []
    task = asyncio.create_task(serve(n_devices=1, latency_s=0.0, print_fn=lines.append))
    for _ in range(100):
        if len(lines) >= 7:
            break
        await asyncio.sleep(0.05)
    assert all(line.startswith("export NAVILINK_") for line in lines)
    names = {line.split("=", 1)[0].removeprefix("export ") for line in lines}
    assert {"NAVILINK_EMAIL", "NAVILINK_PASSWORD", "NAVILINK_REST_BASE_URL", "NAVILINK_IOT_ENDPOINT",
            "NAVILINK_IOT_PORT", "NAVILINK_CA_FILE"} <= names  # fmt: skip
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert export_lines({"NAVILINK_PASSWORD": "a b'c"}) == ["export NAVILINK_PASSWORD='a b'\"'\"'c'"]
