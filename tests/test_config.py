"""Settings: sources, validation messages that name the variable and the fix, no secrets shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from navilink_etl.config import NaviLinkConfig, load_config
from navilink_etl.errors import ConfigurationError


def test_from_environment_reads_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_EMAIL", "owner@example.com")
    monkeypatch.setenv("NAVILINK_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("NAVILINK_POLLING_INTERVAL", "120")
    cfg = NaviLinkConfig.from_environment()
    assert cfg.email == "owner@example.com"
    assert cfg.password_value == "s3cret-pw"
    assert cfg.polling_interval == 120
    assert not cfg.is_embedded and cfg.is_real_cloud
    assert "s3cret-pw" not in repr(cfg) and "s3cret-pw" not in str(cfg)
    assert "s3cret-pw" not in repr(cfg.password)


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("NAVILINK_EMAIL=dot@example.com\nNAVILINK_PASSWORD=pw\nNAVILINK_DATA_DIR=/tmp/x\n")
    monkeypatch.chdir(tmp_path)
    cfg = NaviLinkConfig.from_environment()
    assert cfg.email == "dot@example.com" and cfg.data_dir == Path("/tmp/x")


def test_defaults_are_the_embedded_default() -> None:
    cfg = load_config()
    assert cfg.is_embedded and cfg.polling_interval == 300 and cfg.data_dir == Path("data")


def test_polling_floor_against_the_real_cloud_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_POLLING_INTERVAL", "10")
    with pytest.raises(ConfigurationError) as exc:
        load_config()
    assert "NAVILINK_POLLING_INTERVAL=30" in str(exc.value) and "rate limits" in str(exc.value)
    # against another endpoint (the fake cloud) short intervals are fine
    assert load_config(rest_base_url="http://127.0.0.1:1/api/v2.1", polling_interval=5).polling_interval == 5


def test_invalid_value_names_variable_value_and_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_POLLING_INTERVAL", "often")
    with pytest.raises(ConfigurationError) as exc:
        load_config()
    msg = str(exc.value)
    assert "NAVILINK_POLLING_INTERVAL" in msg and "'often'" in msg and "fix:" in msg


def test_bad_timezone_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigurationError, match=r"NAVILINK_TIMEZONE.*Mars/Olympus.*IANA"):
        load_config()


def test_password_never_appears_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_EMAIL", "a@b.c")
    monkeypatch.setenv("NAVILINK_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("NAVILINK_POLLING_INTERVAL", "3")
    with pytest.raises(ConfigurationError) as exc:
        load_config()
    assert "hunter2-secret" not in str(exc.value)


def test_email_without_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_EMAIL", "a@b.c")
    with pytest.raises(ConfigurationError, match="NAVILINK_PASSWORD"):
        load_config()
