"""The status parser against the captured payloads (golden) and arbitrary input (hypothesis)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from navilink_etl.errors import PayloadError
from navilink_etl.fields import BY_KEY
from navilink_etl.protocol import DhwMode
from navilink_etl.status import (
    KNOWN_KEYS,
    NEWER_FIRMWARE_KEYS,
    STATUS_KEYS_2025_09,
    UNKNOWN_MARKERS,
    MessageKind,
    parse_energy,
    parse_message,
    parse_status,
    status_row,
    status_schema,
)

from .conftest import CAPTURE_DIR, load_capture

STATUS_FILES = sorted(p.name for p in CAPTURE_DIR.glob("status_*.json"))


def test_every_captured_status_has_the_87_keys_in_wire_order() -> None:
    assert len(STATUS_FILES) == 4
    for name in STATUS_FILES:
        keys = list(load_capture(name)["response"]["status"])
        assert tuple(keys) == STATUS_KEYS_2025_09, name


def test_heatpump_running_reply_converts_units() -> None:
    st_ = parse_status(load_capture("status_response_heatpump_running.json"))
    assert st_.kind == MessageKind.REPLY
    assert st_.mac == "aabbccddeeff"
    assert st_.session_id == "1758919299363"
    assert st_.dhw_temperature_c == 58.5  # 117 half-degC
    assert st_.dhw_temperature == pytest.approx(137.3)
    assert st_.setpoint_c == 60.5
    assert st_.dhw_temperature_setting == pytest.approx(140.9)
    assert st_.tank_upper_c == pytest.approx(58.6)  # 586 deci-degC
    assert st_.tank_lower_c == pytest.approx(53.6)
    assert st_.ambient_c == pytest.approx(25.8)
    assert st_.target_superheat_k == pytest.approx(5.0)  # a delta, not +32 F
    assert st_.compressor_on is True and st_.upper_element_on is False
    assert st_.power_w == 432 and st_.current_inst_power == 432
    assert st_.operation_mode == 32
    assert st_.dhw_mode == DhwMode.HEAT_PUMP
    assert st_.dhw_charge_per == 92 and st_.dhw_charge_percent == 92
    # docs/protocol.md 4.4 worked example: total 1861 -> 7444 Wh, available 379 -> 1516 Wh, usable 5928
    assert st_.full_recovery_wh == 7444 and st_.energy_to_setpoint_wh == 1516
    assert st_.usable_energy_wh == 5928


def test_standby_reply() -> None:
    st_ = parse_status(load_capture("status_response_standby_idle.json"))
    assert st_.operation_mode == 0 and st_.power_w == 1
    assert st_.compressor_on is False and st_.heating_demand is False
    assert st_.tank_upper_c == 60.0 and st_.tank_lower_c == pytest.approx(59.7)
    assert st_.usable_energy_wh == (1861 - 119) * 4


def test_high_demand_echo_with_element_and_draw() -> None:
    st_ = parse_status(load_capture("status_ack_set_high_demand_electric_element_running.json"))
    assert st_.kind == MessageKind.CONTROL_ECHO
    assert st_.command == 33554437
    assert st_.dhw_mode == DhwMode.HIGH_DEMAND
    assert st_.upper_element_on is True and st_.lower_element_on is False
    assert st_.compressor_on is False
    assert st_.drawing is True
    assert st_.operation_mode == 64 and st_.power_w == 5193


def test_push_power_lags_relay_flags() -> None:
    st_ = parse_status(load_capture("status_push_heat_source_change_67108892.json"))
    assert st_.kind == MessageKind.PUSH and st_.session_id == "4"
    assert st_.upper_element_on is True and st_.compressor_on is True
    assert st_.power_w == 433  # still the compressor-only figure: power lags by one message


def test_unknown_flag_zero_is_none_and_unknown_keys_kept() -> None:
    msg = load_capture("status_response_standby_idle.json")
    msg["response"]["status"]["compUse"] = 0
    msg["response"]["status"]["brandNewField"] = {"x": 1}
    st_ = parse_status(msg)
    assert st_.compressor_on is None
    assert st_.extras == {"brandNewField": {"x": 1}}


def test_newer_firmware_keys_parse_and_are_typed() -> None:
    msg = load_capture("status_response_standby_idle.json")
    for i, k in enumerate(NEWER_FIRMWARE_KEYS):
        msg["response"]["status"][k] = i
    st_ = parse_status(json.dumps(msg))
    assert st_.extras == {}
    assert st_.raw["heatMinOpTemperature"] == 0
    assert st_.raw["recircDhwFlowRate"] == len(NEWER_FIRMWARE_KEYS) - 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: m["response"]["status"].__setitem__("tankUpperTemperature", "586"), "tankUpperTemperature is str"),
        (lambda m: m["response"]["status"].__setitem__("compUse", True), "compUse is bool"),
        (lambda m: m["response"]["status"].__setitem__("dhwTemperature", 58.5), "dhwTemperature is float"),
        (lambda m: m["response"]["status"].pop("currentInstPower"), "currentInstPower is missing"),
        (lambda m: m.pop("response"), "no 'response' object"),
        (lambda m: m["response"].__setitem__("status", [1, 2]), "status is not an object"),
    ],
)
def test_bad_payloads_raise_payload_error_with_reason(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    msg = load_capture("status_response_heatpump_running.json")
    mutate(msg)
    with pytest.raises(PayloadError) as exc:
        parse_status(json.dumps(msg))
    assert reason in str(exc.value)
    assert exc.value.raw  # the raw text is kept for quarantine


def test_truncated_json_is_a_payload_error() -> None:
    raw = (CAPTURE_DIR / "status_response_heatpump_running.json").read_bytes()[:500]
    with pytest.raises(PayloadError, match="not JSON"):
        parse_status(raw)


def test_status_row_is_lossless_and_matches_schema() -> None:
    msg = load_capture("status_response_heatpump_running.json")
    st_ = parse_status(msg)
    row = status_row(st_, received_at=datetime(2025, 9, 26, 20, 41, 39, tzinfo=UTC), source="import")
    schema = status_schema()
    assert set(row) == set(schema)
    for k, v in msg["response"]["status"].items():
        assert row[k] == v
    assert all(row[k] is None for k in NEWER_FIRMWARE_KEYS)
    assert row["device"] == "aabbccddeeff" and row["kind"] == "reply"
    # the content hash ignores key order and differs when a value differs
    reordered = dict(reversed(list(msg["response"]["status"].items())))
    msg2 = {**msg, "response": {**msg["response"], "status": reordered}}
    assert status_row(parse_status(msg2), received_at=row["received_at"], source="x")["content_hash"] == row["content_hash"]
    msg["response"]["status"]["dhwChargePer"] = 93
    assert status_row(parse_status(msg), received_at=row["received_at"], source="x")["content_hash"] != row["content_hash"]


def test_status_row_refuses_naive_time() -> None:
    st_ = parse_status(load_capture("status_response_standby_idle.json"))
    with pytest.raises(ValueError, match="timezone-aware"):
        status_row(st_, received_at=datetime(2025, 1, 1), source="x")


def test_energy_reply_parses_per_day() -> None:
    resp = {"typeOfUsage": 1, "total": {"hpUsage": 3, "heUsage": 5, "hpTime": 1, "heTime": 0},
            "usage": [{"year": 2025, "month": 9, "data": [
                {"hpUsage": 1, "heUsage": 5, "hpTime": 1, "heTime": 0},
                {"hpUsage": 2, "heUsage": 0, "hpTime": 0, "heTime": 0}]}]}
    days = parse_energy(resp)
    assert [(d.day, d.hp_wh, d.he_wh, d.hp_h) for d in days] == [(1, 1, 5, 1), (2, 2, 0, 0)]
    with pytest.raises(PayloadError):
        parse_energy({"usage": [{"year": 2025, "month": 13, "data": []}]})


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
def test_no_bytes_crash_the_parser(raw: bytes | str) -> None:
    with contextlib.suppress(PayloadError):
        parse_status(raw)


@settings(max_examples=300, deadline=None)
@given(overrides=st.dictionaries(st.sampled_from((*KNOWN_KEYS, "other")), _json, max_size=6))
def test_mutated_status_objects_either_parse_or_raise_payload_error(overrides: dict) -> None:  # type: ignore[type-arg]
    msg = load_capture("status_response_heatpump_running.json")
    msg["response"]["status"].update(overrides)
    try:
        st_ = parse_status(msg)
    except PayloadError as exc:
        assert str(exc)
    else:
        for k, v in overrides.items():
            if k not in KNOWN_KEYS:
                continue
            f = BY_KEY[k]
            if v is None:  # JSON null: as if absent
                assert st_.raw[k] is None and not f.required
            elif type(v) is int and not f.lo <= v <= f.hi:  # an "unknown" marker: None, raw kept
                assert v in UNKNOWN_MARKERS and st_.raw[k] is None and st_.raw.unknown[k] == v
            else:
                assert st_.raw[k] == v and type(v) is int


@settings(max_examples=200, deadline=None)
@given(env=_json)
def test_arbitrary_envelopes_never_crash(env: object) -> None:
    with contextlib.suppress(PayloadError):
        parse_message(json.dumps(env))
