"""The wire field table: complete for the captured firmware, ranges that admit every captured value
and fit the store, a DeviceStatus attribute per SI name, and stg_status's generated block current."""

from __future__ import annotations

import pytest

from navilink_etl import fields
from navilink_etl.fields import BY_KEY, BY_SI, DERIVED, FIELDS, STG_STATUS_COLUMNS, Encoding
from navilink_etl.status import KNOWN_KEYS, REQUIRED_KEYS, STATUS_KEYS_2025_09, DeviceStatus, parse_status

from .conftest import CAPTURE_DIR, load_capture

CAPTURES = sorted(p.name for p in CAPTURE_DIR.glob("status_*.json"))


def test_keys_are_unique_and_the_captured_firmware_is_complete() -> None:
    assert len(BY_KEY) == len(FIELDS) == len(KNOWN_KEYS)
    assert len(STATUS_KEYS_2025_09) == 87
    for name in CAPTURES:
        assert tuple(load_capture(name)["response"]["status"]) == STATUS_KEYS_2025_09
    assert "heLowerOnTDiffempSetting" in BY_KEY  # the wire's typo, verbatim
    assert set(REQUIRED_KEYS) <= set(STATUS_KEYS_2025_09)


def test_every_captured_value_is_within_its_range() -> None:
    for name in CAPTURES:
        for key, value in load_capture(name)["response"]["status"].items():
            f = BY_KEY[key]
            assert f.lo <= value <= f.hi, (name, key, value)


def test_ranges_fit_the_int64_columns_and_hold_the_encodings_meaning() -> None:
    for f in FIELDS:
        assert -(2**63) <= f.lo < f.hi < 2**63, f.key
        if f.encoding in (Encoding.FLAG,):
            assert (f.lo, f.hi) == (0, 255)  # a byte: unseen codes decode to unknown, raw stored
        if f.unit == "degC":
            lo_c, hi_c = fields.DECODE[f.encoding](f.lo), fields.DECODE[f.encoding](f.hi)
            assert -60 <= lo_c < 0 < 100 <= hi_c <= 200, f.key


@pytest.mark.parametrize(
    ("encoding", "raw", "value"),
    [
        (Encoding.HALF_C, 117, 58.5), (Encoding.DECI_C, 586, 58.6), (Encoding.DECI_K, -35, -3.5),
        (Encoding.DECI, 25, 2.5), (Encoding.WH4, 1861, 7444.0), (Encoding.WATTS, 432, 432),
        (Encoding.RAW, 33554437, 33554437), (Encoding.FLAG, 2, True), (Encoding.FLAG, 1, False),
        (Encoding.FLAG, 0, None), (Encoding.FLAG, 3, None),
    ],
)
def test_decoders(encoding: Encoding, raw: int, value: object) -> None:
    got = fields.DECODE[encoding](raw)
    assert got == value and type(got) is type(value)


def test_every_si_name_is_a_device_status_attribute_decoded_by_the_table() -> None:
    st = parse_status(load_capture("status_response_heatpump_running.json"))
    for si, f in BY_SI.items():
        assert getattr(st, si) == fields.decode(f.key, st.raw[f.key]), si
    for d in DERIVED:
        assert getattr(st, d.si) == d.py(*(st.raw[k] for k in d.keys))
    assert set(st.si()) == set(BY_SI) | {d.si for d in DERIVED}
    assert st.usable_energy_wh == st.stored_wh and st.current_inst_power == st.power_w
    # an attribute without a field would be a hand-written conversion: none left
    assert set(STG_STATUS_COLUMNS) <= set(st.si())
    assert hasattr(DeviceStatus, "tank_mean_c")


def test_stg_status_sql_holds_the_generated_block() -> None:
    sql = fields.stg_status_path().read_text(encoding="utf-8")
    assert fields.render_stg_status(sql) == sql, "run: python -m navilink_etl.fields"
    assert fields.stg_status_block() in sql
    for si in STG_STATUS_COLUMNS:
        assert sql.count(f" as {si},") == 1, si


def test_render_replaces_a_stale_block() -> None:
    sql = fields.stg_status_path().read_text(encoding="utf-8")
    stale = sql.replace('d."tankUpperTemperature" / 10 as tank_upper_c', 'd."tankUpperTemperature" / 2 as tank_upper_c')
    assert stale != sql and fields.render_stg_status(stale) == sql


def test_encode_inverts_decode_for_every_field() -> None:
    for f in FIELDS:
        for raw in {f.lo, f.hi, max(f.lo, min(f.hi, 1)), max(f.lo, min(f.hi, 2)), (f.lo + f.hi) // 2}:
            if f.encoding is Encoding.FLAG and raw not in (1, 2):
                continue  # unknown codes all decode to None, which encodes as 0
            assert fields.encode(f.key, fields.decode(f.key, raw)) == raw, (f.key, raw)
    assert fields.encode("compUse", None) == 0 and fields.encode("tankUpperTemperature", None) is None
    assert fields.encode("dhwTemperatureSetting", 60.4) == 121  # rounded to the half-degree step
