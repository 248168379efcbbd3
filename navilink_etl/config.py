"""Settings from direct arguments, environment variables or ``.env``: the only reader of the environment.

Every setting is ``NAVILINK_<NAME>``; ``.env.template`` documents each one. An invalid value fails
at start with the variable's name, the bad value (never for secrets) and how to fix it.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .errors import ConfigurationError
from .protocol import DEFAULT_IOT_ENDPOINT, DEFAULT_IOT_REGION, DEFAULT_REST_BASE_URL
from .redact import register_password, register_storage_secret

if TYPE_CHECKING:
    from .homeassistant.target import PublishTarget
    from .storage import Location

log = logging.getLogger(__name__)

MIN_REAL_CLOUD_INTERVAL_S = 30
ALLOW_CUSTOM_ENDPOINT = "NAVILINK_ALLOW_CUSTOM_ENDPOINT"  # read from the process environment only
_SECRET_FIELDS = {"password", "publish_url", "aws_secret_access_key", "aws_access_key_id"}  # publish_url may carry the broker's password
_ENDPOINT_FIELDS = ("rest_base_url", "iot_endpoint", "iot_port", "ca_file")
_warned_env_files: set[str] = set()

_FIXES: dict[str, str] = {
    "polling_interval": "use a whole number of seconds, e.g. NAVILINK_POLLING_INTERVAL=300",
    "log_level": "use one of DEBUG, INFO, WARNING, ERROR",
    "timezone": "use an IANA zone name such as America/Los_Angeles",
    "iot_port": "use a TCP port 1-65535, or leave it unset for 443",
    "ca_file": "point it at a readable PEM file, or leave it unset for the system CAs",
    "request_timeout": "use seconds, e.g. NAVILINK_REQUEST_TIMEOUT=10",
    "price_per_kwh": "use dollars per kWh, e.g. NAVILINK_PRICE_PER_KWH=0.17",
    "delivery_temp_f": "use degF between 80 and 140 (the temperature you shower at, mixed at the "
                       "tap), e.g. NAVILINK_DELIVERY_TEMP_F=105",
    "tariff": "use flat, tou or csv",
    "email": "set NAVILINK_EMAIL to your NaviLink account e-mail",
    "publish_url": "use mqtt://[user:password@]host[:port] or mqtts://... (TLS), e.g. "
                   "NAVILINK_PUBLISH_URL=mqtt://ha:secret@192.168.1.10:1883",
    "ha_discovery_prefix": "use Home Assistant's MQTT discovery prefix, e.g. homeassistant (no +, # or "
                           "leading/trailing /)",
    "rest_base_url": f"use https://, e.g. the default {DEFAULT_REST_BASE_URL} (plain http:// only for "
                     "127.0.0.1, ::1 or localhost), or unset it",
    "data_dir": "use a local folder, or s3://bucket/prefix for an S3-compatible store",
    "spool_dir": "use a local folder, e.g. NAVILINK_SPOOL_DIR=./spool",
    "warehouse": "use a local file path, e.g. NAVILINK_WAREHOUSE=./warehouse.duckdb",
    "shard": "use K/N with 1 <= K <= N, e.g. NAVILINK_SHARD=1/4 (or collect --shard 1/4); unset for one "
             "collector for all devices",
    "accounts_file": "point it at a readable TOML or JSON file listing accounts (see .env.template), or "
                     "unset it",
    "refresh_minutes": "use real minutes between warehouse refreshes while collecting, "
                       "e.g. NAVILINK_REFRESH_MINUTES=15, or 0 to turn them off",
}


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``: credentials sent there stay on this machine."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def rest_url_problem(url: object) -> str | None:
    """Why credentials must not be sent to ``url`` (None when it is https or loopback http)."""
    if not isinstance(url, str):
        return f"is a {type(url).__name__}, not a URL"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http") or not host:
        return "is not an https:// URL"
    if parts.scheme == "http" and not is_loopback(host):
        return "uses plain http:// to a host other than this machine: the password would travel unencrypted"
    return None


def require_safe_rest_url(url: str) -> str:
    """``url`` if credentials may be sent there, else a ``ConfigurationError`` naming the fix."""
    problem = rest_url_problem(url)
    if problem is not None:
        raise ConfigurationError(f"NAVILINK_REST_BASE_URL {problem}; fix: {_FIXES['rest_base_url']}")
    return url


def _endpoint_is_local_or_official(name: str, value: Any) -> bool:
    if value is None or value == "":
        return True
    text = str(value)
    if name == "rest_base_url":
        if text.rstrip("/") == DEFAULT_REST_BASE_URL:
            return True
        try:
            return is_loopback(urlsplit(text).hostname)
        except ValueError:
            return False
    if name == "iot_endpoint":
        return text == DEFAULT_IOT_ENDPOINT or is_loopback(text)
    return False  # iot_port / ca_file: judged by the endpoints they go with


class _GuardedDotEnv(PydanticBaseSettingsSource):
    """The ``.env`` source with two guards: a warning when the file is readable by group or others,
    and endpoint settings honoured only when they point at the official cloud or this machine."""

    def __init__(self, inner: DotEnvSettingsSource, init: InitSettingsSource) -> None:
        super().__init__(inner.settings_cls)
        self._inner, self._init = inner, init

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        files = self._inner.env_file
        paths = [files] if isinstance(files, str | os.PathLike) else list(files or [])
        for p in paths:
            warn_if_shared(Path(p).expanduser())
        values = self._inner()
        environ = {k.lower() for k in os.environ}
        given = set(self._init.init_kwargs)
        from_file = [k for k in _ENDPOINT_FIELDS
                     if k in values and k not in given and f"navilink_{k}" not in environ]
        if not from_file:
            return values

        def effective(k: str) -> Any:
            if k in given:
                return self._init.init_kwargs[k]
            return os.environ.get(f"NAVILINK_{k.upper()}", values.get(k))

        local = all(_endpoint_is_local_or_official(k, effective(k)) for k in ("rest_base_url", "iot_endpoint"))
        custom_ca = "ca_file" in from_file and not all(
            is_loopback(_host(k, effective(k))) for k in ("rest_base_url", "iot_endpoint"))
        shown = ", ".join(f"NAVILINK_{k.upper()}" for k in from_file)
        allowed = os.environ.get(ALLOW_CUSTOM_ENDPOINT, "").strip().lower() in ("1", "true", "yes")
        if (not local or custom_ca) and not allowed:
            raise ConfigurationError(
                f"{shown} in the .env file points the sign-in somewhere other than the NaviLink cloud "
                "or this machine; a stray .env must not redirect your credentials. Fix: remove it from "
                f".env, or set it in the environment, or set {ALLOW_CUSTOM_ENDPOINT}=1 in the environment")
        log.warning("%s taken from the .env file in %s", shown, Path.cwd())
        return values


def _host(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if name == "rest_base_url":
        try:
            return urlsplit(str(value)).hostname
        except ValueError:
            return None
    return str(value)


def warn_if_shared(path: Path, holds: str = "may hold NAVILINK_PASSWORD") -> None:
    """Warn once per file when a file with secrets (``.env``, an accounts file) is readable by
    group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    key = str(path.resolve())
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and key not in _warned_env_files:
        _warned_env_files.add(key)
        log.warning("%s is readable by group or others (mode %s) and %s; fix: chmod 600 %s",
                    path, oct(mode & 0o777), holds, path)


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
    # a local folder or s3://bucket/prefix (validated: see storage.parse_s3_url); local -> Path
    data_dir: Path | str = Path("data")
    spool_dir: Path | None = None  # default: <data_dir>/spool when local, ./spool when remote
    warehouse: Path | None = None  # default: <data_dir>/warehouse.duckdb / ./warehouse.duckdb
    # the store's S3 endpoint and keys: the standard AWS variables (not the NaviLink cloud's)
    aws_endpoint_url: str | None = Field(default=None, validation_alias=AliasChoices(
        "AWS_ENDPOINT_URL", "aws_endpoint_url"))
    aws_access_key_id: SecretStr | None = Field(default=None, repr=False, validation_alias=AliasChoices(
        "AWS_ACCESS_KEY_ID", "aws_access_key_id"))
    aws_secret_access_key: SecretStr | None = Field(default=None, repr=False, validation_alias=AliasChoices(
        "AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"))
    aws_region: str | None = Field(default=None, validation_alias=AliasChoices(
        "AWS_REGION", "aws_region"))
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
    # fleets: this collector's shard ("K/N") and a file of several accounts (collect.accounts)
    shard: str | None = None
    accounts_file: Path | None = None
    # analytics
    tariff: Literal["flat", "tou", "csv"] = "flat"
    price_per_kwh: float = Field(default=0.17, ge=0)
    price_csv: Path | None = None
    inlet_temperature_f: float = Field(default=58.0, ge=32, le=90)
    delivery_temp_f: float = Field(default=105.0, ge=80, le=140)  # hot water mixed at the tap
    # Home Assistant sink (navilink_etl/homeassistant): the broker URL may hold a password
    publish_url: SecretStr | None = Field(default=None, repr=False)
    ha_discovery_prefix: str = "homeassistant"

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        assert isinstance(init_settings, InitSettingsSource)
        return init_settings, env_settings, _GuardedDotEnv(dotenv_settings, init_settings), file_secret_settings

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone {v!r:.60}") from exc
        return v

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, v: Any) -> Any:
        from .storage import parse_s3_url

        if isinstance(v, str):
            if not v.strip():
                raise ValueError("is empty")
            parsed = parse_s3_url(v)  # a ConfigurationError for s3:/b, S3://b, gs://b ...
            if parsed is not None:
                return "s3://" + "/".join(p for p in parsed if p)
            return Path(v).expanduser()
        if isinstance(v, Path) and parse_s3_url(str(v)) is not None:  # "s3:/b" raised already
            raise ValueError("an s3:// URL given as a path lost a slash; pass it as text")
        return v

    @field_validator("aws_endpoint_url")
    @classmethod
    def _aws_endpoint(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            parts = urlsplit(v)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("the S3 store's endpoint must be http(s)://host[:port], e.g. "
                             "http://127.0.0.1:9000 for MinIO")
        return v.rstrip("/")

    @field_validator("ca_file", "accounts_file")
    @classmethod
    def _existing_file(cls, v: Path | None) -> Path | None:
        try:
            ok = v is None or v.is_file()
        except (OSError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"no such file: {str(v)!r:.80}")
        return v

    @field_validator("shard")
    @classmethod
    def _shard(cls, v: str | None) -> str | None:
        from .collect.shard import Shard

        if v is None or not v.strip():
            return None
        try:
            return str(Shard.parse(v, setting="NAVILINK_SHARD"))
        except ConfigurationError as exc:
            raise ValueError(str(exc).split("; fix:")[0].removeprefix("NAVILINK_SHARD: ")) from None

    @field_validator("publish_url")
    @classmethod
    def _publish_url(cls, v: SecretStr | None) -> SecretStr | None:
        from .homeassistant.target import parse_publish_url

        if v is not None and v.get_secret_value() != "":
            parse_publish_url(v.get_secret_value())  # ValueError names the problem, never the password
        return v if v is not None and v.get_secret_value() != "" else None

    @field_validator("ha_discovery_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or v != v.strip("/") or any(c in v for c in "+#\0") or v != v.strip():
            raise ValueError(f"{v!r:.60} is not a usable MQTT topic prefix")
        return v

    @field_validator("rest_base_url")
    @classmethod
    def _rest_url(cls, v: str) -> str:
        problem = rest_url_problem(v)
        if problem is not None:
            raise ValueError(problem)
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
        return not self.email and self.accounts_file is None

    @property
    def is_remote(self) -> bool:
        """The store is on S3 (``NAVILINK_DATA_DIR=s3://...``)."""
        return isinstance(self.data_dir, str)

    @property
    def location(self) -> Location:
        """The store's location (``storage.Location``), with the S3 credentials when remote."""
        from .storage import S3Credentials

        creds = S3Credentials(
            endpoint_url=self.aws_endpoint_url,
            access_key_id=self.aws_access_key_id.get_secret_value() if self.aws_access_key_id else None,
            secret_access_key=(self.aws_secret_access_key.get_secret_value()
                               if self.aws_secret_access_key else None),
            region=self.aws_region)
        # keyed by the absolute folder: the cache must not outlive a change of working folder
        return _location(str(self.data_dir) if self.is_remote else Path(self.data_dir).absolute(), creds)

    @property
    def local_dir(self) -> Path:
        """The local folder for what never goes to object storage (logs, DuckDB's temporary
        files): the data folder when it is local, else the current folder."""
        return Path(".") if self.is_remote else Path(self.data_dir)

    @property
    def local_data_dir(self) -> Path:
        """The data folder, for commands that only work on a local one (a clear error if remote)."""
        if self.is_remote:
            raise ConfigurationError(f"NAVILINK_DATA_DIR={self.data_dir} is an S3 store; this command "
                                     "needs a local folder: set NAVILINK_DATA_DIR to one")
        return Path(self.data_dir)

    @property
    def spool_path(self) -> Path:
        """NAVILINK_SPOOL_DIR, else ``<data_dir>/spool`` (local) or ``./spool`` (remote store)."""
        if self.spool_dir is not None:
            return Path(self.spool_dir)
        return Path("spool") if self.is_remote else Path(self.data_dir) / "spool"

    @property
    def warehouse_path(self) -> Path:
        """NAVILINK_WAREHOUSE, else ``<data_dir>/warehouse.duckdb`` or ``./warehouse.duckdb``."""
        if self.warehouse is not None:
            return Path(self.warehouse)
        return Path("warehouse.duckdb") if self.is_remote else Path(self.data_dir) / "warehouse.duckdb"

    @property
    def password_value(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None

    @property
    def publish_target(self) -> PublishTarget | None:
        """The parsed ``publish_url`` (a ``homeassistant.target.PublishTarget``), or None."""
        from .homeassistant.target import parse_publish_url

        return None if self.publish_url is None else parse_publish_url(self.publish_url.get_secret_value())

    @classmethod
    def from_environment(cls, **overrides: Any) -> NaviLinkConfig:
        """Read ``.env`` and ``NAVILINK_*`` variables (overrides win), as the original library did."""
        return load_config(**overrides)

    def __repr__(self) -> str:  # secrets are SecretStr; keep the repr short and readable
        return (f"NaviLinkConfig(email={self.email!r}, polling_interval={self.polling_interval}, "
                f"data_dir={str(self.data_dir)!r}, rest_base_url={self.rest_base_url!r}, "
                f"iot_endpoint={self.iot_endpoint!r}, iot_port={self.iot_port})")

    __str__ = __repr__


@functools.lru_cache(maxsize=16)
def _location(value: str | Path, creds: Any) -> Location:
    """One ``Location`` (and so one S3 client) per setting and credentials."""
    from .storage import Location

    return Location.from_setting(value, creds)


def load_config(**overrides: Any) -> NaviLinkConfig:
    """Build a config, turning pydantic's errors into one ``ConfigurationError`` a person can act on."""
    try:
        cfg = NaviLinkConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            var = (name.upper() if name.lower().startswith("aws_") else f"NAVILINK_{name.upper()}") \
                if name else "configuration"
            shown = "" if (not name or name.lower() in _SECRET_FIELDS) else f" (got {err.get('input')!r:.60})"
            msg = str(err["msg"]).removeprefix("Value error, ")
            fix = _FIXES.get(name, "")
            lines.append(f"{var}: {msg}{shown}" + (f"; fix: {fix}" if fix else ""))
        raise ConfigurationError("invalid configuration: " + "; ".join(lines)) from None
    register_password(cfg.password_value)
    register_storage_secret(cfg.aws_secret_access_key.get_secret_value()
                            if cfg.aws_secret_access_key else None)
    from .homeassistant.target import register_secret

    register_secret(cfg.publish_target)
    return cfg
