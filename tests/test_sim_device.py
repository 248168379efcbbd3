"""SimulatedDevice: wire payloads (key sets, encodings), lagged power, pushes, controls, EMS."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from navilink_etl.protocol import Command, Event
from navilink_etl.sim.device import SimulatedDevice
from navilink_etl.sim.ledger import TruthLog
from navilink_etl.status import NEWER_FIRMWARE_KEYS, STATUS_KEYS_2025_09, parse_energy, parse_status

START = datetime(2025, 9, 26, 6, 0, tzinfo=UTC)
MAC = "04786332fca0"
CAPTURE = Path(__file__).parent / "fixtures" / "navilink-capture" / "status_response_standby_idle.json"


def wire(dev: SimulatedDevice, status: dict[str, int]) -> bytes:
    return orjson.dumps({
        "protocolVersion": 2, "clientID": "c", "sessionID": "1", "requestTopic": f"cmd/52/navilink-{dev.mac}/st",
        "response": {"deviceType": 52, "macAddress": dev.mac, "additionalValue": dev.additional_value,
                     "status": status},
    })


def run(dev: SimulatedDevice, hours: float, poll_s: float = 30.0) -> list[dict[str, int]]:
    """Poll like a client; returns replies and pushes in arrival order."""
    out: list[dict[str, int]] = []
    t = dev.now
    end = t + timedelta(hours=hours)
    while t < end:
        t += timedelta(seconds=poll_s)
        dev.advance_to(t)
        out += [p.status for p in dev.drain_pushes()]
        out.append(dev.snapshot(Command.STATUS))
    return out


@pytest.mark.parametrize(("firmware", "keys"), [
    ("2025-09", STATUS_KEYS_2025_09), ("2025-10", STATUS_KEYS_2025_09 + NEWER_FIRMWARE_KEYS)])
def test_snapshot_has_the_captured_keys_in_order_and_parses(firmware: str, keys: tuple[str, ...]) -> None:
    dev = SimulatedDevice(MAC, seed=3, start=START, firmware=firmware)
    st = dev.snapshot(Command.STATUS)
    assert tuple(st) == keys
    assert all(type(v) is int for v in st.values())
    parsed = parse_status(wire(dev, st), received_at=START)
    assert parsed.kind == "reply" and parsed.mac == MAC
    assert parsed.setpoint_c == 60.5  # captured default 121 half-degC
    assert abs(parsed.tank_upper_c - parsed.dhw_temperature_c) <= 0.25  # half-degC of the upper sensor
    assert parsed.extras == {}


def test_key_order_matches_the_real_capture() -> None:
    captured = json.loads(CAPTURE.read_text())["response"]["status"]
    dev = SimulatedDevice(MAC, seed=1, start=START)
    assert list(dev.snapshot(Command.STATUS)) == list(captured)


def test_idle_snapshot_looks_like_the_capture() -> None:
    dev = SimulatedDevice(MAC, seed=1, start=START, draws=None)
    st = dev.snapshot(Command.STATUS)
    assert st["operationMode"] == 0 and st["operationBusy"] == 1 and st["currentInstPower"] == 1
    assert st["compUse"] == st["heatUpperUse"] == st["heatLowerUse"] == 1
    assert st["currentStatenum"] == 20 and st["eevStep"] == 480 and st["dhwUseSustained"] == 0
    assert 55 <= st["wifiRssi"] <= 65 and st["currentDhwFlowRate"] == 0
    # 70.27 counts/K x (60.5 - 35) = 1792 (the capture has 1791 at this setpoint)
    assert abs(st["totalEnergyCapacity"] - 1791) <= 2
    assert 0 <= st["availableEnergyCapacity"] <= 120


def test_energy_fields_scale_with_water_mass() -> None:
    tot = {v: SimulatedDevice(MAC, seed=1, start=START, volume_gal=v).snapshot(0)["totalEnergyCapacity"]
           for v in (50, 65, 80)}
    assert tot[50] < tot[65] < tot[80]
    assert abs(tot[80] / tot[65] - 302.8 / 241.7) < 0.002


def test_heat_pump_cycle_pushes_and_lagged_power() -> None:
    truth = TruthLog(MAC)
    dev = SimulatedDevice(MAC, seed=5, start=START, draws=None, mode=1, initial_c=58.0,
                          compressor_start_delay_s=120.0, truth=truth)
    assert dev.snapshot(0)["operationMode"] == 0
    dev.apply_control(Command.DHW_TEMPERATURE, "dhw-temperature", [131])
    msgs = run(dev, 1.0)
    pushes = [m for m in msgs if m["command"] >> 24 == 0x04]
    # demand: fan pre-run (operationMode 32, compressor still off), then the compressor relay
    assert pushes[0]["command"] == Event.OPERATION_MODE_CHANGED and pushes[0]["operationMode"] == 32
    assert pushes[0]["compUse"] == 1 and pushes[0]["currentStatenum"] == 30
    relay = next(p for p in pushes if p["command"] == Event.RELAY_CHANGED)
    assert relay["compUse"] == 2 and relay["currentStatenum"] == 40
    assert 3 <= relay["currentInstPower"] <= 17  # still the pre-run figure: one message late
    running = [m for m in msgs if m["compUse"] == 2 and m["command"] == Command.STATUS]
    assert all(420 <= m["currentInstPower"] <= 470 for m in running[1:])
    # power always equals the previous message's true power: pre-run values only right after it
    for prev, cur in itertools.pairwise(msgs):
        if prev["compUse"] == 2 and cur["compUse"] == 2:
            assert cur["currentInstPower"] > 400
    dev.advance_to(dev.now + timedelta(hours=6))
    assert truth.cycles and truth.cycles[0][4] == "setpoint_raise"


def test_power_is_reported_one_message_late() -> None:
    dev = SimulatedDevice(MAC, seed=5, start=START, draws=None, mode=1, initial_c=58.0)
    dev.apply_control(Command.DHW_MODE, "dhw-mode", [2])
    dev.apply_control(Command.DHW_TEMPERATURE, "dhw-temperature", [131])
    assert dev.snapshot(Command.DHW_TEMPERATURE)["currentInstPower"] == 1  # the echo
    assert not dev.drain_pushes()
    dev.advance_to(START + timedelta(seconds=30))
    pushes = dev.drain_pushes()
    assert pushes and pushes[0].status["heatUpperUse"] == 2
    assert pushes[0].status["currentInstPower"] < 20  # the element's power shows in the next message
    nxt = dev.snapshot(Command.STATUS)
    assert 4800 <= nxt["currentInstPower"] <= 5250 and nxt["operationMode"] == 64


def test_power_off_keeps_the_mode_and_power_on_restores_it() -> None:
    dev = SimulatedDevice(MAC, seed=2, start=START, mode=1, draws=None)
    assert dev.apply_control(Command.POWER_OFF, "power-off", [])
    echo = dev.snapshot(Command.POWER_OFF)
    assert echo["dhwOperationSetting"] == 6 and echo["currentHeatUse"] == 0
    dev.advance_to(START + timedelta(seconds=30))
    assert dev.snapshot(0)["currentStatenum"] == 60  # wind-down
    dev.advance_to(START + timedelta(hours=2))
    assert dev.snapshot(0)["operationBusy"] == 1
    assert dev.apply_control(Command.POWER_ON, "power-on", [])
    assert dev.snapshot(Command.POWER_ON)["dhwOperationSetting"] == 1


def test_controls_as_the_capture_shows() -> None:
    dev = SimulatedDevice(MAC, seed=2, start=START, mode=1, draws=None)
    assert dev.apply_control(Command.DHW_MODE, "dhw-mode", [5, 2])
    st = dev.snapshot(Command.DHW_MODE)
    assert st["dhwOperationSetting"] == 5 and st["vacationDaySetting"] == 2 and st["vacationDayElapsed"] == 2
    assert dev.apply_control(Command.DHW_MODE, "dhw-mode", [1])
    assert dev.apply_control(Command.DHW_TEMPERATURE, "dhw-temperature", [117])
    st = dev.snapshot(Command.DHW_TEMPERATURE)
    assert st["dhwTemperatureSetting"] == 117 and st["dhwTargetTemperatureSetting"] == 117
    assert st["hpUpperOffTempSetting"] == 117 and st["vacationDaySetting"] == 2  # it stays set
    assert not dev.apply_control(Command.GOOUT_DAY, "goout-day", [3])  # the device ignores it
    assert dev.apply_control(33554476, "tou-on", [])  # echoed, not modelled
    assert not dev.apply_control(Command.DHW_MODE, "dhw-mode", ["3"])  # type: ignore[list-item]
    assert not dev.apply_control(Command.DHW_TEMPERATURE, "dhw-temperature", [140])  # > 65.5 degC
    assert not dev.apply_control(Command.DHW_MODE, "dhw-mode", [6])  # off is not a writable mode
    assert dev.snapshot(0)["dhwTemperatureSetting"] == 117


def test_mode_change_updates_heat_use_at_once_without_a_push() -> None:
    dev = SimulatedDevice(MAC, seed=2, start=START, mode=1, draws=None)
    assert dev.snapshot(0)["currentHeatUse"] == 0
    dev.apply_control(Command.DHW_MODE, "dhw-mode", [3])
    assert dev.snapshot(Command.DHW_MODE)["currentHeatUse"] == 3
    dev.advance_to(START + timedelta(minutes=5))
    assert all(p.status["command"] != Event.BUSY_CHANGED for p in dev.drain_pushes())


def test_electric_mode_reverts_after_72_hours() -> None:
    dev = SimulatedDevice(MAC, seed=2, start=START, mode=4, draws=None)
    dev.apply_control(Command.DHW_MODE, "dhw-mode", [2])
    dev.advance_to(START + timedelta(hours=71.9))
    assert dev.snapshot(0)["dhwOperationSetting"] == 2
    dev.advance_to(START + timedelta(hours=72.1))
    assert dev.snapshot(0)["dhwOperationSetting"] == 4


def test_vacation_resumes_heating_nine_hours_early() -> None:
    truth = TruthLog(MAC)
    dev = SimulatedDevice(MAC, seed=2, start=START, mode=1, draws=None, location="garage", truth=truth)
    dev.apply_control(Command.DHW_MODE, "dhw-mode", [5, 2])
    dev.advance_to(START + timedelta(hours=38))
    assert dev.heater.tank.lower_c < dev.heater.setpoint_c - 5.0  # cooled, no heating yet
    assert not truth.cycles and dev.heater.cycle is None
    dev.advance_to(START + timedelta(hours=40))  # 8 h before the end
    assert dev.heater.busy and dev.snapshot(0)["dhwOperationSetting"] == 5
    dev.advance_to(START + timedelta(hours=48.1))
    assert dev.snapshot(0)["dhwOperationSetting"] == 1


def test_energy_usage_reply_shape() -> None:
    dev = SimulatedDevice(MAC, seed=4, start=START, mode=2)
    dev.advance_to(START + timedelta(days=2))
    resp = dev.energy_usage(2025, [9, 10])
    assert resp["typeOfUsage"] == 1 and [u["month"] for u in resp["usage"]] == [9, 10]
    assert [len(u["data"]) for u in resp["usage"]] == [30, 31]
    days = parse_energy(resp)
    assert sum(d.he_wh for d in days) == resp["total"]["heUsage"] > 0
    assert sum(d.hp_wh for d in days) == resp["total"]["hpUsage"] == 0  # electric mode
    by_day = {date(d.year, d.month, d.day): d for d in days}
    assert by_day[date(2025, 9, 25)].he_wh == 0 and by_day[date(2025, 9, 26)].he_wh > 0
    assert by_day[date(2025, 10, 5)].he_wh == 0  # the future is zero-filled


def test_feature_reply() -> None:
    feat = SimulatedDevice(MAC, seed=1, start=START, volume_gal=80, firmware="2025-10").feature()
    assert feat["volumeCode"] == 3 and feat["modelTypeCode"] == 513
    assert feat["dhwTemperatureMin"] == 81 and feat["dhwTemperatureMax"] == 131
    assert feat["controllerSwVersion"] == 184614912


def test_same_seed_same_messages() -> None:
    a = run(SimulatedDevice(MAC, seed=9, start=START), 6.0, poll_s=60.0)
    b = run(SimulatedDevice(MAC, seed=9, start=START), 6.0, poll_s=60.0)
    c = run(SimulatedDevice(MAC, seed=10, start=START), 6.0, poll_s=60.0)
    assert a == b
    assert a != c


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulatedDevice(MAC, seed=1, start=datetime(2025, 1, 1))
