"""Read what one report needs from the warehouse: one device, one period of local days.

Only selection happens here (device, period, columns); every derived number comes from a mart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

DEFAULT_DAYS = 30
TIMELINE_DAYS = 31  # the tank timeline shows the last this many days (charts.timeline's last_days)


@dataclass(frozen=True)
class ReportData:
    """Frames for one device and the local days ``start``..``end`` (inclusive), in time zone ``tz``."""

    device: str
    start: date
    end: date
    tz: str
    # stg_status: received_at, tank_*_c, stored_wh, dhw_charge_pct; only what the timeline
    # draws: the last TIMELINE_DAYS days of the period and a sample before them
    status: pl.DataFrame
    energy_daily: pl.DataFrame  # energy_daily
    cycles: pl.DataFrame  # heating_cycles
    recovery: pl.DataFrame  # recovery_rates
    draws: pl.DataFrame  # draws
    standby: pl.DataFrame  # standby_loss
    efficiency: pl.DataFrame  # efficiency_daily
    tariff: str = ""  # how costs were priced, e.g. "flat $0.170/kWh" (from the settings table)
    element_use: pl.DataFrame = field(default_factory=pl.DataFrame)  # element_use
    # hot_water over the timeline's days, the period's runouts, the device's current findings
    hot_water: pl.DataFrame = field(default_factory=pl.DataFrame)
    runouts: pl.DataFrame = field(default_factory=pl.DataFrame)
    findings: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def utc_bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """[first local midnight, midnight after the last day) as UTC datetimes."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, time(0), zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(0), zone).astimezone(UTC)
    return lo, hi


def _pl(con: Any, sql: str, params: list[Any]) -> pl.DataFrame:
    return con.sql(sql, params=params).pl()


def list_devices(con: Any) -> list[str]:
    """Every device with status samples (in the stored int_device_states), sorted."""
    return [r[0] for r in con.sql("select distinct device from int_device_states "
                                  "order by 1").fetchall()]


def data_days(con: Any, device: str) -> tuple[date, date] | None:
    """The first and last local day with samples for ``device`` (from energy_daily), or None."""
    row = con.sql("select min(day), max(day) from energy_daily where device = ? and samples > 0",
                  params=[device]).fetchall()
    return (row[0][0], row[0][1]) if row and row[0][0] is not None else None


def default_period(con: Any, device: str, start: date | None, end: date | None,
                   days: int = DEFAULT_DAYS) -> tuple[date, date] | None:
    """Fill in a missing start/end: the last ``days`` days that have data, never before the first.

    With only ``start`` given, the period runs ``days`` days from it (at most to the last data).
    """
    span = data_days(con, device)
    if start is not None and end is not None:
        return start, end
    if span is None:
        return None
    first, last = span
    if end is None:
        end = last if start is None else min(start + timedelta(days=days - 1), last)
    if start is None:
        start = max(end - timedelta(days=days - 1), first)
    return (start, end) if start <= end else None


def _timeline_samples(con: Any, device: str, lo: datetime, hi: datetime,
                      days: int = TIMELINE_DAYS) -> pl.DataFrame:
    """The samples the timeline may draw (stg_status): every sample of the period from a stored
    sample before its last ``days`` days on (so the timeline still sees that the period is
    longer), read with the filter below the deduplication: a month, not the whole period.

    Every sample but a device's very last has an interval, so int_day_energy's last_sample_at
    bounds it: ``last`` is at most the period's last sample, and the latest stored sample before
    ``last - days`` lies before the timeline's own cut (its last sample - ``days``).
    """
    from ..warehouse import samples_sql

    row = con.sql("select max(last_sample_at) from int_day_energy where device = ? and "
                  "last_sample_at >= ? and last_sample_at < ?", params=[device, lo, hi]).fetchall()
    last = row[0][0] if row else None
    if last is not None:
        row = con.sql("select max(last_sample_at) from int_day_energy where device = ? and "
                      "last_sample_at >= ? and last_sample_at < ?",
                      params=[device, lo, last - timedelta(days=days)]).fetchall()
        if row and row[0][0] is not None:
            lo = row[0][0]
    sql = samples_sql("device = ? and received_at >= ? and received_at < ?")
    return _pl(con, "select received_at, tank_upper_c, tank_lower_c, stored_wh, dhw_charge_pct "
                    f"from ({sql}) order by received_at", [device, lo, hi])


def _hot_water_samples(con: Any, device: str, status: pl.DataFrame, hi: datetime) -> pl.DataFrame:
    """The stored hot_water rows over the timeline's samples (``status``)."""
    if status.is_empty():
        return pl.DataFrame()
    return _pl(con, "select received_at, gallons_available, gallons_full, delivery_c from hot_water "
                    "where device = ? and received_at >= ? and received_at < ? order by received_at",
               [device, status["received_at"].min(), hi])


def load(con: Any, device: str, start: date, end: date, tz: str) -> ReportData:
    """Select ``device``'s rows for the period from each mart (the tank timeline from the raw
    samples, stg_status, for its last TIMELINE_DAYS days); timestamps are filtered on the local
    days' UTC bounds."""
    lo, hi = utc_bounds(start, end, tz)
    dev_ts = [device, lo, hi]
    dev_day = [device, start, end]
    status = _timeline_samples(con, device, lo, hi)
    tariff = ""
    rows = con.sql("select tariff, price_per_kwh from settings").fetchall()
    if rows:
        kind, price = rows[0]
        tariff = {"flat": f"flat ${price:.3f}/kWh", "tou": "the device's time-of-use plan",
                  "csv": "the price list in NAVILINK_PRICE_CSV"}.get(kind, str(kind))
    return ReportData(
        device=device, start=start, end=end, tz=tz, status=status, tariff=tariff,
        energy_daily=_pl(con, "select * from energy_daily where device = ? and day between ? and ? "
                              "order by day", dev_day),
        cycles=_pl(con, "select * from heating_cycles where device = ? and cycle_start >= ? "
                        "and cycle_start < ? order by cycle_start", dev_ts),
        recovery=_pl(con, "select * from recovery_rates where device = ? and cycle_start >= ? "
                          "and cycle_start < ? order by cycle_start", dev_ts),
        draws=_pl(con, "select * from draws where device = ? and draw_start >= ? and draw_start < ? "
                       "order by draw_start", dev_ts),
        standby=_pl(con, "select * from standby_loss where device = ? and window_start >= ? "
                         "and window_start < ? order by window_start", dev_ts),
        efficiency=_pl(con, "select * from efficiency_daily where device = ? and day between ? "
                            "and ? order by day", dev_day),
        element_use=_pl(con, "select * from element_use where device = ? and run_start >= ? "
                             "and run_start < ? order by run_start", dev_ts),
        hot_water=_hot_water_samples(con, device, status, hi),
        runouts=_pl(con, "select * from runouts where device = ? and start >= ? and start < ? "
                         "order by start", dev_ts),
        findings=_pl(con, "select * from findings where device = ? order by case severity when "
                          "'error' then 0 when 'warning' then 1 else 2 end, finding", [device]),
    )


def load_report_data(config: Any, device: str | None = None, start: date | None = None,
                     end: date | None = None, days: int = DEFAULT_DAYS) -> ReportData:
    """Refresh the warehouse, pick ``device`` (default: the first with data) and load its period.

    The default period is the last ``days`` days with data, as in the report. For notebooks.
    """
    from .. import warehouse
    from ..errors import StoreError

    warehouse.refresh(config)
    con = warehouse.connect(config, read_only=True)
    try:
        devices = list_devices(con)
        dev = device or (devices[0] if devices else None)
        period = default_period(con, dev, start, end, days) if dev else None
        if dev is None or period is None:
            raise StoreError(f"no data under {config.data_dir}: run `navilink-etl simulate` or "
                             "`navilink-etl collect` first", data_dir=str(config.data_dir))
        return load(con, dev, period[0], period[1], config.timezone)
    finally:
        con.close()
