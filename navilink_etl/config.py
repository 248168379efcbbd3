"""Settings from direct arguments, environment variables or ``.env``: the only reader of the environment.

Every setting is ``NAVILINK_<NAME>``; ``.env.template`` documents each one. An invalid value fails
at start with the variable's name, the bad value (never for secrets) and how to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError
from .protocol import DEFAULT_IOT_ENDPOINT, DEFAULT_IOT_REGION, DEFAULT_REST_BASE_URL
from .redact import register_secret

MIN_REAL_CLOUD_INTERVAL_S = 30
_SECRET_FIELDS = {"password"}

_FIXES: dict[str, str] = {
    "polling_interval": "use a whole number of seconds, e.g. NAVILINK_POLLING_INTERVAL=300",
    "log_level": "use one of DEBUG, INFO, WARNING, ERROR",
    "timezone": "use an IANA zone name such as America/Los_Angeles",
    "iot_port": "use a TCP port 1-65535, or leave it unset for 443",
    "ca_file": "point it at a readable PEM file, or leave it unset for the system CAs",
    "request_timeout": "use seconds, e.g. NAVILINK_REQUEST_TIMEOUT=10",
    "price_per_kwh": "use dollars per kWh, e.g. NAVILINK_PRICE_PER_KWH=0.17",
    "tariff": "use flat, tou or csv",
    "email": "set NAVILINK_EMAIL to your NaviLink account e-mail",
    "refresh_minutes": "use real minutes between warehouse refreshes while collecting, "
                       "e.g. NAVILINK_REFRESH_MINUTES=15, or 0 to turn them off",
}


def _system_timezone() -> str:
    """The machine's IANA zone name, for local days; UTC when it cannot be told."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


class NaviLinkConfig(BaseSettings):
    """Configuration for the client, collector, warehouse and reports.

    With no ``email`` set, the collector runs the embedded default (simulator + offline fake cloud).
    """

    model_config = SettingsConfigDict(
        env_prefix="NAVILINK_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        frozen=True, populate_by_name=True,
    )

    email: str | None = None
    password: SecretStr | None = Field(default=None, repr=False)
    polling_interval: int = Field(default=300, ge=1)
    data_dir: Path = Path("data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: str = Field(default_factory=_system_timezone)
    # endpoints (the offline fake cloud overrides these)
    rest_base_url: str = DEFAULT_REST_BASE_URL
    iot_endpoint: str = DEFAULT_IOT_ENDPOINT
    iot_port: int | None = Field(default=None, ge=1, le=65535)
    iot_region: str = DEFAULT_IOT_REGION
    ca_file: Path | None = None
    client_id: str | None = None
    request_timeout: float = Field(default=10.0, gt=0)
    refresh_minutes: float = Field(default=15.0, ge=0)  # warehouse refresh while collecting; 0 = off
    # analytics
    tariff: Literal["flat", "tou", "csv"] = "flat"
    price_per_kwh: float = Field(default=0.17, ge=0)
    price_csv: Path | None = None
    inlet_temperature_f: float = Field(default=58.0, ge=32, le=90)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v

    @model_validator(mode="after")
    def _real_cloud_floor(self) -> NaviLinkConfig:
        if self.is_real_cloud and self.polling_interval < MIN_REAL_CLOUD_INTERVAL_S:
            raise ValueError(
                f"polling_interval {self.polling_interval} s is below {MIN_REAL_CLOUD_INTERVAL_S} s: "
                "the real NaviLink cloud is shared and unpublished rate limits apply; "
                f"use NAVILINK_POLLING_INTERVAL={MIN_REAL_CLOUD_INTERVAL_S} or more"
            )
        if self.email and self.password is None:
            raise ValueError("NAVILINK_EMAIL is set but NAVILINK_PASSWORD is not; set both, or neither for the embedded simulator")
        return self

    @property
    def is_real_cloud(self) -> bool:
        return self.rest_base_url.rstrip("/") == DEFAULT_REST_BASE_URL

    @property
    def is_embedded(self) -> bool:
        """No credentials: run against the embedded simulator and offline fake cloud."""
        return not self.email

    @property
    def password_value(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None

    @classmethod
    def from_environment(cls, **overrides: Any) -> NaviLinkConfig:
        """Read ``.env`` and ``NAVILINK_*`` variables (overrides win), as the original library did."""
        return load_config(**overrides)

    def __repr__(self) -> str:  # secrets are SecretStr; keep the repr short and readable
        return (f"NaviLinkConfig(email={self.email!r}, polling_interval={self.polling_interval}, "
                f"data_dir={str(self.data_dir)!r}, rest_base_url={self.rest_base_url!r}, "
                f"iot_endpoint={self.iot_endpoint!r}, iot_port={self.iot_port})")

    __str__ = __repr__


def load_config(**overrides: Any) -> NaviLinkConfig:
    """Build a config, turning pydantic's errors into one ``ConfigurationError`` a person can act on."""
    try:
        cfg = NaviLinkConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            var = f"NAVILINK_{name.upper()}" if name else "configuration"
            shown = "" if (not name or name in _SECRET_FIELDS) else f" (got {err.get('input')!r:.60})"
            msg = str(err["msg"]).removeprefix("Value error, ")
            fix = _FIXES.get(name, "")
            lines.append(f"{var}: {msg}{shown}" + (f"; fix: {fix}" if fix else ""))
        raise ConfigurationError("invalid configuration: " + "; ".join(lines)) from None
    register_secret(cfg.password_value)
    return cfg
