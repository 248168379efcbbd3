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


@pytest.mark.parametrize("url", ["http://nlus.naviensmartcontrol.com/api/v2.1", "http://192.168.1.5/api",
                                 "ftp://127.0.0.1/x", "nlus.naviensmartcontrol.com", "https://", "http://[::2]/a"])
def test_credentials_go_only_to_https_or_this_machine(url: str) -> None:
    with pytest.raises(ConfigurationError) as ei:
        load_config(rest_base_url=url)
    assert "NAVILINK_REST_BASE_URL" in str(ei.value) and "https://" in str(ei.value)


@pytest.mark.parametrize("url", ["https://example.com/api", "http://127.0.0.1:8080/api/v2.1", "http://127.9.9.9/x",
                                 "http://localhost:1/x", "http://[::1]:9/x"])
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert load_config(rest_base_url=url).rest_base_url == url


async def test_the_authenticator_refuses_plain_http_to_another_host_too() -> None:
    from navilink_etl.cloud.auth import Authenticator

    with pytest.raises(ConfigurationError, match="NAVILINK_REST_BASE_URL"):
        Authenticator(None, "http://10.0.0.1/api", "ua")  # type: ignore[arg-type]


def _dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, mode: int = 0o600) -> Path:
    env = tmp_path / ".env"
    env.write_text(text)
    env.chmod(mode)
    monkeypatch.chdir(tmp_path)
    return env


def test_a_stray_dotenv_cannot_redirect_the_sign_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dotenv(tmp_path, monkeypatch, "NAVILINK_EMAIL=a@b.c\nNAVILINK_PASSWORD=pw-123456\n"
            "NAVILINK_REST_BASE_URL=https://evil.example.com/api/v2.1\n")
    with pytest.raises(ConfigurationError) as ei:
        load_config()
    text = str(ei.value)
    assert "NAVILINK_REST_BASE_URL" in text and ".env" in text and "NAVILINK_ALLOW_CUSTOM_ENDPOINT=1" in text
    assert "pw-123456" not in text
    # the same value from the environment, or with the explicit opt-in, is honoured
    monkeypatch.setenv("NAVILINK_ALLOW_CUSTOM_ENDPOINT", "1")
    assert load_config().rest_base_url == "https://evil.example.com/api/v2.1"


def test_dotenv_endpoint_settings_for_this_machine_are_honoured_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    _dotenv(tmp_path, monkeypatch, "NAVILINK_REST_BASE_URL=http://127.0.0.1:9/api/v2.1\n"
            f"NAVILINK_IOT_ENDPOINT=localhost\nNAVILINK_CA_FILE={ca}\n")
    cfg = load_config()
    assert cfg.iot_endpoint == "localhost" and cfg.ca_file == ca
    assert "taken from the .env file" in caplog.text
    # a custom CA from .env with the official endpoints would allow a man in the middle: refused
    (tmp_path / ".env").write_text(f"NAVILINK_CA_FILE={ca}\n")
    with pytest.raises(ConfigurationError, match="NAVILINK_CA_FILE"):
        load_config()
    # an argument wins over .env and is not judged as coming from it
    assert load_config(ca_file=ca).ca_file == ca


def test_a_dotenv_readable_by_others_is_warned_about_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _dotenv(tmp_path, monkeypatch, "NAVILINK_POLLING_INTERVAL=300\n", mode=0o644)
    load_config()
    load_config()
    assert caplog.text.count("readable by group or others") == 1 and "chmod 600" in caplog.text
    caplog.clear()
    _dotenv(tmp_path / "sub" if (tmp_path / "sub").mkdir() is None else tmp_path, monkeypatch,
            "NAVILINK_POLLING_INTERVAL=300\n", mode=0o600)
    load_config()
    assert "readable by group" not in caplog.text
