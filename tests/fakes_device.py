"""A tiny ``DeviceModel`` for fake-cloud tests: serves the captured status and obeys controls."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from navilink_etl.protocol import Command, DhwMode, Event
from navilink_etl.sim.model import Push

from .conftest import load_capture


class FixtureDevice:
    """Captured 87-key status; a control changes the written setting and queues one push."""

    def __init__(self, mac: str = "aabbccddeeff", additional_value: str = "5322", home_seq: int = 25004) -> None:
        self.mac = mac
        self.additional_value = additional_value
        self.home_seq = home_seq
        self.device_name = "NWP500"
        self.firmware = "2025-09"
        self.volume_gal = 65
        self.now = datetime(2025, 9, 26, 20, 41, tzinfo=UTC)
        status = load_capture("status_response_heatpump_running.json")["response"]["status"]
        self._status: dict[str, int] = dict(status)
        self._previous_mode = self._status["dhwOperationSetting"]
        self._pushes: list[Push] = []
        self.controls: list[tuple[int, str | None, list[int]]] = []

    def advance_to(self, t: datetime) -> None:
        self.now = max(self.now, t)

    def snapshot(self, command: int) -> dict[str, int]:
        return {**self._status, "command": command}  # "command" stays the first key

    def apply_control(self, command: int, mode: str | None, param: list[int]) -> bool:
        self.controls.append((command, mode, list(param)))
        s = self._status
        if command == Command.GOOUT_DAY:
            return False
        if command == Command.DHW_MODE and param:
            s["dhwOperationSetting"] = param[0]
            if param[0] == DhwMode.VACATION and len(param) > 1:
                s["vacationDaySetting"] = param[1]
        elif command == Command.DHW_TEMPERATURE and param:
            s["dhwTemperatureSetting"] = s["dhwTargetTemperatureSetting"] = param[0]
        elif command == Command.POWER_OFF:
            self._previous_mode = s["dhwOperationSetting"]
            s["dhwOperationSetting"] = DhwMode.POWER_OFF
        elif command == Command.POWER_ON:
            s["dhwOperationSetting"] = self._previous_mode
        s["operationMode"] = 0 if s["dhwOperationSetting"] in (5, 6) else 32
        self._pushes.append(Push(self.now, self.snapshot(Event.OPERATION_MODE_CHANGED)))
        return True

    def queue_push(self, event: int = Event.RELAY_CHANGED) -> None:
        self._pushes.append(Push(self.now, self.snapshot(event)))

    def drain_pushes(self) -> list[Push]:
        out, self._pushes = self._pushes, []
        return out

    def feature(self) -> dict[str, Any]:
        return {"countryCode": 3, "modelTypeCode": 513, "volumeCode": 2, "controllerSerialNumber": "SIM0001",
                "dhwTemperatureMin": 81, "dhwTemperatureMax": 131, "energyUsageUse": 2}  # fmt: skip

    def energy_usage(self, year: int, months: list[int]) -> dict[str, Any]:
        usage = []
        for m in months:
            days = calendar.monthrange(year, m)[1]
            usage.append({"year": year, "month": m,
                          "data": [{"hpUsage": 100, "heUsage": 0, "hpTime": 1, "heTime": 0}] * days})  # fmt: skip
        n = sum(len(u["data"]) for u in usage)
        return {"typeOfUsage": 1, "total": {"hpUsage": 100 * n, "heUsage": 0, "hpTime": n, "heTime": 0},
                "usage": usage}  # fmt: skip
