"""Every parsed number, date and identifier has a range: out of range is a PayloadError naming the
field, the value and the reason; "unknown" markers are None with the raw kept; whatever the parser
returns can be stored. Fuzzed at each boundary (FUZZ_EXAMPLES examples each, default 300)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from navilink_etl.collect.store import Store, scan_dataset, status_file_schema
from navilink_etl.errors import PayloadError
from navilink_etl.fields import BY_KEY, FIELDS
from navilink_etl.status import (
    DAY_WH_MAX,
    KNOWN_KEYS,
    UNKNOWN_MARKERS,
    DeviceStatus,
    EnergyDay,
    content_hash,
    parse_energy,
    parse_message,
    parse_status,
    status_row,
)

from .conftest import load_capture

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 1)
INT64 = (-(2**63), 2**63 - 1)


def _msg(**status: Any) -> dict[str, Any]:
    msg = load_capture("status_response_heatpump_running.json")
    msg["response"]["status"].update(status)
    return msg


def _refused(raw: Any, *needles: str) -> PayloadError:
    with pytest.raises(PayloadError) as exc:
        parse_status(raw)
    for needle in needles:
        assert needle in str(exc.value), (needle, str(exc.value))
    return exc.value


def _encodes(s: str) -> bool:
    s.encode("utf-8")  # raises on a lone surrogate
    return True


def assert_storable(st_: DeviceStatus) -> None:
    """The row fits the status file schema (Int64 wire columns, UTF-8 strings, JSON extras)."""
    row = status_row(st_, received_at=AT, source="fuzz")
    for k in KNOWN_KEYS:
        v = row[k]
        assert v is None or (type(v) is int and BY_KEY[k].lo <= v <= BY_KEY[k].hi), (k, v)
    if row["extra_json"] is not None:
        orjson.loads(row["extra_json"])
    for k in ("device", "session_id", "client_id"):
        assert row[k] is None or (isinstance(row[k], str) and _encodes(row[k]))
    pl.DataFrame([row | {"date": AT.date()}], schema=status_file_schema(), orient="row")


def assert_storable_days(days: list[EnergyDay]) -> None:
    for d in days:
        date(d.year, d.month, d.day)
        assert 2015 <= d.year <= TODAY.year + 1
        assert 0 <= d.hp_wh <= DAY_WH_MAX and 0 <= d.he_wh <= DAY_WH_MAX and d.hp_wh + d.he_wh <= DAY_WH_MAX
        assert 0 <= d.hp_h <= 24 and 0 <= d.he_h <= 24


# --- status fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.key)
def test_each_field_accepts_its_bounds_and_refuses_beyond(f) -> None:  # type: ignore[no-untyped-def]
    for v in (f.lo, f.hi):
        assert parse_status(_msg(**{f.key: v})).raw[f.key] == v
    for v in (f.lo - 1, f.hi + 1):
        if v in UNKNOWN_MARKERS and not f.required:
            st_ = parse_status(_msg(**{f.key: v}))
            assert st_.raw[f.key] is None and st_.raw.unknown == {f.key: v}
        else:
            _refused(_msg(**{f.key: v}), f"status.{f.key} = {v}", f"raw {f.lo}..{f.hi}")


def test_out_of_range_names_field_value_and_reason() -> None:
    exc = _refused(_msg(tankUpperTemperature=5000), "status.tankUpperTemperature = 5000 is out of range",
                   "deci_c: -60.0..200.0 degC")
    assert exc.raw and exc.context["field"] == "tankUpperTemperature"
    _refused(_msg(currentInstPower=20_000), "currentInstPower = 20000", "raw 0..15000", "watts W")
    _refused(_msg(dhwChargePer=101), "dhwChargePer = 101", "raw 0..100")


def test_an_unknown_marker_in_an_optional_field_is_none_and_stored_raw(tmp_path: Path) -> None:
    msg = _msg(ambientTemperature=2**64 - 1, cumulatedOpTimeEvaFan=2**32 - 1, brandNew=7)
    st_ = parse_status(orjson.dumps(msg))
    assert st_.ambient_c is None and st_.raw["ambientTemperature"] is None
    assert st_.raw.unknown == {"ambientTemperature": 2**64 - 1, "cumulatedOpTimeEvaFan": 2**32 - 1}
    assert st_.extras == {"brandNew": 7}
    assert st_.tank_upper_c == 58.6  # the rest of the sample is kept
    row = status_row(st_, received_at=AT, source="test")
    assert row["content_hash"] == content_hash(msg["response"]["status"])
    with Store(tmp_path) as store:  # the real store writes it and opens again afterwards
        assert store.append_status([row]) == 1
        store.flush()
    with Store(tmp_path) as store:
        back = scan_dataset(tmp_path, "status").collect()
    assert back.height == 1 and back["ambientTemperature"][0] is None
    # the payload is rebuilt losslessly as the known columns | extra_json
    stored = {k: v for k, v in back.row(0, named=True).items() if k in KNOWN_KEYS and v is not None}
    assert stored | orjson.loads(back["extra_json"][0]) == msg["response"]["status"]


def test_an_unknown_marker_in_a_required_field_refuses_the_sample() -> None:
    _refused(_msg(tankLowerTemperature=65535), "tankLowerTemperature = 65535", "'unknown' marker", "required")
    _refused(_msg(currentInstPower=2**64 - 1), "currentInstPower")


def test_null_is_absent() -> None:
    st_ = parse_status(_msg(ambientTemperature=None))
    assert st_.ambient_c is None and st_.raw.unknown == {}
    _refused(_msg(compUse=None), "status.compUse is missing")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (float("nan"), "float nan"), (float("inf"), "float inf"), (58.0, "float 58.0"), (True, "bool True"),
        ("586", "str"), ([586], "list"), (10**5000, "-bit integer>"), (-(10**40), "-<"),
    ],
    ids=["nan", "inf", "float", "bool", "str", "list", "huge", "huge-negative"],
)
def test_non_integers_and_huge_integers_are_refused_by_name(value: object, needle: str) -> None:
    _refused(_msg(tankUpperTemperature=value), "status.tankUpperTemperature", needle)


def test_json_text_with_nan_or_a_huge_number_is_refused() -> None:
    text = orjson.dumps(_msg()).decode()
    _refused(text.replace('"tankUpperTemperature":586', '"tankUpperTemperature":NaN'), "not JSON")
    _refused(text.replace('"tankUpperTemperature":586', '"tankUpperTemperature":1e400'), "not JSON")
    _refused(text.replace('"tankUpperTemperature":586', '"tankUpperTemperature":18446744073709551616'),
             "tankUpperTemperature is float")  # orjson reads beyond 64 bits as a float


def test_unknown_keys_must_be_storable() -> None:
    _refused(_msg(brandNew=2**70), "cannot be stored")
    st_ = parse_status(_msg(brandNew={"x": [1, None, 2.5, float("nan")]}))
    assert_storable(st_)
    bad: dict[Any, Any] = _msg()
    bad["response"]["status"][7] = 1
    _refused(bad, "int key")


# --- the envelope -------------------------------------------------------------------------------


@pytest.mark.parametrize("mac", ["aa/../../../../escaped_dir", "default", "../../etc", "aabbccddeef", 12, ["x"]])
def test_a_body_mac_that_is_not_12_hex_digits_is_refused(mac: object) -> None:
    msg = _msg()
    msg["response"]["macAddress"] = mac
    with pytest.raises(PayloadError, match=r"response\.macAddress .* is not 12 hex digits"):
        parse_message(msg)


def test_a_body_mac_is_normalised() -> None:
    msg = _msg()
    msg["response"]["macAddress"] = "AA:BB:CC:DD:EE:FF"
    assert parse_status(msg).mac == "aabbccddeeff"
    msg["response"]["macAddress"] = ""
    assert parse_status(msg).mac is None


@pytest.mark.parametrize(
    ("value", "needle"),
    [(3.5, "float"), (True, "bool"), ({"a": 1}, "dict"), ("x" * 300, "300 characters"), ("a\ud800", "surrogate"),
     (2**70, "int")],
)
def test_identifier_strings_are_checked(value: object, needle: str) -> None:
    msg = _msg()
    msg["sessionID"] = value
    with pytest.raises(PayloadError, match="sessionID") as exc:
        parse_message(msg)
    assert needle in str(exc.value)
    msg["sessionID"] = 1758919299363
    assert parse_message(msg).session_id == "1758919299363"


# --- energy history -----------------------------------------------------------------------------


def _energy(year: int = 2025, month: int = 9, days: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    days = days if days is not None else [{"hpUsage": 1200, "heUsage": 0, "hpTime": 3, "heTime": 0}]
    return {"typeOfUsage": 1, "usage": [{"year": year, "month": month, "data": days}]}


def _day(**kw: Any) -> dict[str, Any]:
    return {"hpUsage": 1200, "heUsage": 0, "hpTime": 3, "heTime": 0} | kw


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (_energy(year=2014), "usage.year = 2014 is out of range (2015..2027)"),
        (_energy(year=2028), "usage.year = 2028"),
        (_energy(year=10**18), "usage.year = 1000000000000000000"),
        (_energy(year=True), "usage.year is bool"),
        (_energy(month=0), "usage.month = 0"),
        (_energy(month=13), "usage.month = 13"),
        (_energy(month=4, days=[_day()] * 31), "2025-04 lists 31 days, the month has 30"),
        (_energy(year=2025, month=2, days=[_day()] * 29), "has 28"),
        (_energy(days=[_day(hpUsage=DAY_WH_MAX + 1)]), f"hpUsage = {DAY_WH_MAX + 1} is out of range"),
        (_energy(days=[_day(hpUsage=100_000, heUsage=100_000)]), "more than a day can hold"),
        (_energy(days=[_day(hpTime=25)]), "hpTime = 25"),
        (_energy(days=[_day(heUsage=-5)]), "heUsage = -5"),
        (_energy(days=[_day(hpUsage=12.5)]), "hpUsage is float"),
        (_energy(days=[_day(hpUsage=float("nan"))]), "hpUsage is float nan"),
        (_energy(days=[_day(hpUsage=2**65)]), "hpUsage = 36893488147419103232 is out of range"),
        (_energy(days=[_day(hpUsage=10**40)]), "hpUsage = <133-bit integer>"),
        ({"usage": "x"}, "no 'usage' list"),
        ([1, 2], "not an object"),
    ],
)
def test_energy_replies_out_of_range_are_refused(reply: Any, needle: str) -> None:
    with pytest.raises(PayloadError) as exc:
        parse_energy(reply, today=TODAY)
    assert needle in str(exc.value)


def test_energy_bounds_are_accepted() -> None:
    days = parse_energy(_energy(year=2024, month=2, days=[_day(hpUsage=DAY_WH_MAX, heUsage=0, hpTime=24)] * 29),
                        today=TODAY)
    assert len(days) == 29 and days[-1].day == 29
    assert parse_energy(_energy(year=2027), today=TODAY)[0].year == 2027  # next year: a device clock ahead
    assert parse_energy(_energy(year=2015), today=TODAY)


def test_an_all_ones_energy_day_is_left_out_and_never_reaches_the_store() -> None:
    reply = _energy(days=[_day(), _day(hpUsage=2**64 - 1), _day(heTime=255), _day(hpUsage=2**32 - 1, heUsage=-1),
                          _day(heUsage=7)])
    days = parse_energy(reply, today=TODAY)
    assert [(d.day, d.hp_wh, d.he_wh) for d in days] == [(1, 1200, 0), (5, 1200, 7)]
    assert_storable_days(days)


# --- fuzzing each boundary ----------------------------------------------------------------------

_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12)
_ints = st.integers() | st.sampled_from(sorted(UNKNOWN_MARKERS)) | st.integers(-(2**70), 2**70)
_scalars = st.none() | st.booleans() | _ints | st.floats() | _text
_json = st.recursive(_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(_text, c, max_size=4),
                     max_leaves=16)
_edges = st.sampled_from(FIELDS).flatmap(
    lambda f: st.tuples(st.just(f.key), st.sampled_from((f.lo - 1, f.lo, f.hi, f.hi + 1, *UNKNOWN_MARKERS))))


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300))
def test_fuzz_parse_status_bytes(raw: bytes | str) -> None:
    try:
        assert_storable(parse_status(raw))
    except PayloadError as exc:
        assert str(exc)


@FUZZ
@given(overrides=st.dictionaries(st.sampled_from((*KNOWN_KEYS, "other", "recircX")), _json, max_size=6),
       edges=st.lists(_edges, max_size=4), envelope=st.dictionaries(
           st.sampled_from(("clientID", "sessionID", "requestTopic", "protocolVersion")), _json, max_size=2),
       mac=st.none() | _text | st.sampled_from(("AA:BB:CC:DD:EE:FF", "aa/../x", "aabbccddeeff")),
       as_text=st.booleans())
def test_fuzz_parse_status_objects(overrides: dict[str, Any], edges: list[tuple[str, int]],
                                   envelope: dict[str, Any], mac: Any, as_text: bool) -> None:
    msg = _msg(**(overrides | dict(edges))) | envelope
    msg["response"]["macAddress"] = mac
    try:
        raw: Any = orjson.dumps(msg) if as_text else msg
    except (TypeError, ValueError):  # not JSON text (huge ints, surrogates): the mapping itself
        raw = msg
    try:
        assert_storable(parse_status(raw))
    except PayloadError as exc:
        assert str(exc)


@FUZZ
@given(env=_json | st.fixed_dictionaries({"response": _json}, optional={
    "clientID": _json, "sessionID": _json, "protocolVersion": _json}))
def test_fuzz_parse_message(env: Any) -> None:
    try:
        e = parse_message(env)
    except PayloadError as exc:
        assert str(exc)
    else:
        for v in (e.client_id, e.session_id, e.request_topic, e.additional_value):
            assert v is None or (isinstance(v, str) and len(v) <= 256 and _encodes(v))
        assert e.mac is None or (len(e.mac) == 12 and int(e.mac, 16) >= 0)
        assert e.protocol_version is None or 0 <= e.protocol_version <= 255


_energy_value = _json | st.integers(-5, DAY_WH_MAX + 5) | st.sampled_from(sorted(UNKNOWN_MARKERS))
_energy_day = st.fixed_dictionaries({}, optional={k: _energy_value for k in ("hpUsage", "heUsage", "hpTime", "heTime")})
_month = st.fixed_dictionaries({"year": st.integers(2010, 2030) | _json, "month": st.integers(-1, 14) | _json,
                                "data": st.lists(_energy_day | _json, max_size=33) | _json})


@FUZZ
@given(reply=st.fixed_dictionaries({"usage": st.lists(_month, max_size=3) | _json}) | _json)
def test_fuzz_parse_energy(reply: Any) -> None:
    try:
        days = parse_energy(reply, today=TODAY)
    except PayloadError as exc:
        assert str(exc)
    else:
        assert_storable_days(days)
        rows = [{"device": "aabbccddeeff", "day": date(d.year, d.month, d.day), "hp_wh": d.hp_wh,
                 "he_wh": d.he_wh, "hp_h": d.hp_h, "he_h": d.he_h, "fetched_at": AT + timedelta(0)} for d in days]
        assert all(INT64[0] <= r[k] <= INT64[1] for r in rows for k in ("hp_wh", "he_wh", "hp_h", "he_h"))
