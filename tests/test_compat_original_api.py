"""The original NaviLink library's public surface on navilink-etl: its getting-started flow and
controls against `navilink-etl sim serve` (only the import line differs), the `navilink` alias,
`status` without credentials, and its pandas recipe on our CSV export."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from .serve_helpers import start_serve

# The original's getting-started calls and its documented controls; the import is the alias.
ORIGINAL_FLOW = '''
import asyncio
from navilink import NaviLinkClient, NaviLinkConfig
from navilink.exceptions import NaviLinkError, DeviceOfflineError

async def main():
    config = NaviLinkConfig.from_environment()
    async with NaviLinkClient(config=config) as client:
        await client.authenticate(config.email, config.password)
        devices = await client.get_devices()
        device = devices[0]
        print(f"Device: {device.name} (MAC: {device.mac_address})")
        print(f"Type: {device.device_type} Connected: {device.is_connected}")
        status = await device.get_status()
        print(f"DHW Charge: {status.dhw_charge_per}% / {status.dhw_charge_percent}%")
        print(f"Temperature: {status.dhw_temperature}°F target {status.dhw_temperature_setting}°F")
        print(f"Tank sensors: {status.tank_upper_temperature}°F {status.tank_lower_temperature}°F")
        print(f"Operation Mode: {status.operation_mode} {status.operation_state}")
        print(f"Power Consumption: {status.current_inst_power}W")
        print(f"Error Code: {status.error_code}")
        connectivity = await device.get_connectivity_status()
        print(f"device_connected={connectivity['device_connected']}")

        await device.set_temperature(120)
        status = await device.get_status()
        print(f"setpoint={status.dhw_temperature_setting}")
        for mode in (32, 33, 34, 0):
            echo = await device.set_operation_mode(mode)
            print(f"mode {mode} -> dhw_mode={int(echo.dhw_mode)}")
        await device.turn_on()
        echo = await device.set_operation_mode("heat_pump")
        print(f"mode heat_pump -> dhw_mode={int(echo.dhw_mode)}")
        try:
            await device.set_temperature(80)
        except ValueError as exc:
            print(f"refused: {type(exc).__name__}: {exc}")
        print(f"tree: {issubclass(DeviceOfflineError, NaviLinkError)}")

asyncio.run(main())
'''


def _clean_env(tmp_path: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NAVILINK_")} | {"TMPDIR": str(tmp_path)}


def test_original_flow_and_controls_run_against_sim_serve(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    proc, exports = start_serve(env)
    try:
        script = tmp_path / "getting_started.py"
        script.write_text(ORIGINAL_FLOW, encoding="utf-8")
        run = subprocess.run([sys.executable, str(script)], env=env | exports, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"^Device: \S.* \(MAC: [0-9a-f]{12}\)$", out, re.M)
    assert "Type: 52 Connected: True" in out
    charge = re.search(r"^DHW Charge: (\d+)% / (\d+)%$", out, re.M)
    assert charge and charge.group(1) == charge.group(2) and 0 <= int(charge.group(1)) <= 100
    temps = re.search(r"^Temperature: ([\d.]+)°F target ([\d.]+)°F$", out, re.M)
    assert temps and 90 <= float(temps.group(1)) <= 160 and 95 <= float(temps.group(2)) <= 150
    tank = re.search(r"^Tank sensors: ([\d.]+)°F ([\d.]+)°F$", out, re.M)
    assert tank and abs(float(tank.group(1)) - float(temps.group(1))) < 5  # upper thermistor ~ dhwTemperature
    mode = re.search(r"^Operation Mode: (\d+) (\w+)$", out, re.M)
    assert mode and int(mode.group(1)) in (0, 32, 64, 96)
    assert mode.group(2) in ("standby", "heat_pump", "element", "heat_pump_and_element")
    assert re.search(r"^Power Consumption: \d+W$", out, re.M)
    assert "Error Code: 0" in out and "device_connected=1" in out
    setpoint = float(re.search(r"^setpoint=([\d.]+)$", out, re.M).group(1))  # type: ignore[union-attr]
    assert abs(setpoint - 120) <= 1  # half-degC steps on the wire
    # the original's operation-mode numbers reach the real DHW modes (docs/protocol.md 5.1)
    assert "mode 32 -> dhw_mode=1" in out and "mode 33 -> dhw_mode=2" in out
    assert "mode 34 -> dhw_mode=3" in out and "mode 0 -> dhw_mode=6" in out
    assert "mode heat_pump -> dhw_mode=1" in out
    refused = re.search(r"^refused: ValidationError: 80 degF is outside .* range (\d+)-(\d+) degF", out, re.M)
    assert refused and int(refused.group(1)) > 80
    assert "tree: True" in out
    assert exports["NAVILINK_PASSWORD"] not in out + run.stderr


def test_navilink_alias_is_navilink_etl() -> None:
    import navilink
    import navilink.exceptions as nx
    import navilink.models

    import navilink_etl
    from navilink_etl import errors

    assert navilink.NaviLinkClient is navilink_etl.NaviLinkClient
    assert navilink.NaviLinkConfig is navilink_etl.NaviLinkConfig
    assert navilink.models.DeviceStatus is navilink_etl.DeviceStatus
    assert nx.NaviLinkError is errors.NaviLinkError and nx.DeviceOfflineError is errors.DeviceOfflineError
    assert issubclass(nx.AuthenticationError, nx.NaviLinkError)
    assert issubclass(nx.NaviLinkConnectionError, nx.CommunicationError)
    assert nx.TokenExpiredError is errors.AuthenticationError and nx.MQTTError is errors.NaviLinkConnectionError
    assert issubclass(errors.ValidationError, ValueError)  # the original raised ValueError out of range


def test_config_reads_the_original_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from navilink import NaviLinkConfig

    monkeypatch.chdir(tmp_path)  # no stray .env
    for k, v in {"NAVILINK_EMAIL": "owner@example.com", "NAVILINK_PASSWORD": "pw-not-printed",
                 "NAVILINK_POLLING_INTERVAL": "120", "NAVILINK_LOG_LEVEL": "debug"}.items():
        monkeypatch.setenv(k, v)
    cfg = NaviLinkConfig.from_environment()
    assert (cfg.email, cfg.polling_interval, cfg.log_level) == ("owner@example.com", 120, "DEBUG")
    assert cfg.password is not None and cfg.password.get_secret_value() == "pw-not-printed"
    assert "pw-not-printed" not in repr(cfg)
    direct = NaviLinkConfig(email="a@example.com", password="x")
    assert direct.email == "a@example.com" and not direct.is_embedded


def test_status_compat_names_come_from_the_field_table() -> None:
    from navilink_etl import physics
    from navilink_etl.fields import BY_KEY, decode
    from navilink_etl.status import DeviceStatus, RawStatus

    values: dict[str, int | None] = {f: None for f in BY_KEY}
    values |= {"tankUpperTemperature": 586, "tankLowerTemperature": 412, "operationMode": 96,
               "dhwChargePer": 57, "currentInstPower": 5312, "errorCode": 0, "compUse": 2}
    st = DeviceStatus(raw=RawStatus(values=values, extras={}))
    assert st.tank_upper_temperature == pytest.approx(physics.c_to_f(decode("tankUpperTemperature", 586)))
    assert st.tank_lower_temperature == pytest.approx(physics.c_to_f(41.2))
    assert st.operation_mode == 96 and st.operation_state == "heat_pump_and_element"
    assert st.dhw_charge_per == st.dhw_charge_percent == 57
    assert st.current_inst_power == 5312 and st.error_code == 0 and st.comp_use == 2
    odd = DeviceStatus(raw=RawStatus(values=values | {"operationMode": 33}, extras={}))
    assert odd.operation_mode == 33 and odd.operation_state == "unknown_33"


def test_status_without_credentials_prints_simulated_heaters(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "navilink_etl", "status", "--devices", "2"],
                         env=_clean_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert "SIMULATED" in lines[0] and "no real heater is read" in lines[0]
    heaters = [x for x in lines if "(simulated): tank" in x]
    assert len(heaters) == 2
    for line in heaters:
        m = re.search(r"[0-9a-f]{12} \(simulated\): tank ([\d.]+)°F, setpoint ([\d.]+)°F, charge (\d+)%", line)
        assert m and 90 <= float(m.group(1)) <= 160 and 0 <= int(m.group(3)) <= 100
    assert "Traceback" not in run.stderr and "password" not in (run.stdout + run.stderr).lower()


@pytest.fixture(scope="module")
def exported_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated day collected into a store, exported as `navilink-etl export --format csv`."""
    root = tmp_path_factory.mktemp("export")
    env = _clean_env(root) | {"NAVILINK_DATA_DIR": str(root / "data"), "NAVILINK_TIMEZONE": "UTC"}
    for args in (["simulate", "--days", "1", "--interval", "30"],
                 ["export", "--format", "csv", "--out", str(root / "tank_data.csv")]):
        run = subprocess.run([sys.executable, "-m", "navilink_etl", *args], env=env, cwd=root,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
    return root / "tank_data.csv"


def test_export_loads_in_the_original_recipe_columns(exported_csv: Path) -> None:
    """The original's pandas recipe, column for column, with polars (pandas is not a dependency)."""
    df = pl.read_csv(exported_csv)
    ts = df["timestamp"].str.to_datetime(time_zone="UTC")
    assert ts.null_count() == 0 and ts.is_sorted()
    charge = df["dhw_charge_percent"]
    assert charge.dtype.is_integer() and charge.min() >= 0 and charge.max() <= 100  # type: ignore[operator]
    assert set(df["operation_mode"].unique()) <= {0, 32, 64, 96}
    heat_pump = df.filter(pl.col("operation_mode") == 32)
    assert heat_pump.height > 0
    avg_power = heat_pump["current_inst_power"].mean()
    assert 200 < avg_power < 1000  # type: ignore[operator]  # the compressor's ~400 W, not an element's kW
    standby = df.filter(pl.col("operation_mode") == 0)["current_inst_power"].mean()
    assert standby < 50  # type: ignore[operator]


def test_export_loads_in_pandas_when_installed(exported_csv: Path) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(exported_csv)
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    heat_pump_data = df[df["operation_mode"] == 32]
    assert 200 < heat_pump_data["current_inst_power"].mean() < 1000
    assert df["dhw_charge_percent"].between(0, 100).all()


def test_export_has_every_original_monitor_column(exported_csv: Path) -> None:
    original = ("timestamp", "dhw_charge_percent", "dhw_temperature", "dhw_temperature_setting",
                "operation_mode", "current_inst_power", "compressor_use", "heat_upper_use",
                "heat_lower_use", "eva_fan_use", "error_code", "wifi_rssi", "device_connected")
    df = pl.read_csv(exported_csv)
    assert set(original) <= set(df.columns)
    assert set(df["compressor_use"].unique()) <= {1, 2}
    assert (df["compressor_use"] == df["comp_use"]).all()
    assert (df["device_connected"] == 1).all()  # a stored sample is a poll the device answered


async def test_password_given_the_original_way_is_masked_in_logs() -> None:
    """``NaviLinkConfig(email=, password=)`` bypasses load_config: sign-in registers the password."""
    from navilink import NaviLinkClient, NaviLinkConfig
    from navilink.exceptions import NaviLinkError

    from navilink_etl.redact import redact

    secret = "Original-Way-pw-7731"
    config = NaviLinkConfig(email="a@example.com", password=secret, rest_base_url="http://127.0.0.1:9/api")
    async with NaviLinkClient(config=config) as client:
        with pytest.raises(NaviLinkError):  # nothing listens on port 9
            await client.authenticate(config.email, config.password)
    assert secret not in redact(f"signing in with {secret}")


def test_navilink_alias_is_packaged_from_inside_navilink_etl() -> None:
    """pyproject finds `navilink` under navilink_etl/_compat: no folder beside navilink_etl/."""
    import tomllib

    import navilink
    from setuptools import find_packages

    root = Path(__file__).resolve().parents[1]
    find = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert "navilink_etl/_compat" in find["where"] and "navilink" in find["include"]
    assert find_packages(where=str(root / "navilink_etl" / "_compat")) == ["navilink"]
    assert not (root / "navilink").exists()
    assert Path(navilink.__file__).resolve().is_relative_to(root / "navilink_etl" / "_compat") \
        or "site-packages" in navilink.__file__
