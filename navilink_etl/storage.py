"""Where the data lives: a local folder or ``s3://bucket/prefix`` on any S3-compatible store.

``Location`` is the one place that understands ``NAVILINK_DATA_DIR``. It gives

* ``fs``: an fsspec filesystem (the local one, or s3fs configured only from the standard AWS
  variables ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
  ``AWS_REGION`` as ``config.py`` read them; never from ``~/.aws`` or an instance profile, and never
  from the NaviLink cloud's own AWS IoT credentials, which the sign-in holds in memory),
* ``join(*parts)``: a path in ``fs`` (``bucket/prefix/status/...`` or ``/abs/path/status/...``),
* ``url(*parts)``: the same as a URL every engine takes (``s3://bucket/prefix/status/...``),
* ``storage_options()``: the same credentials for polars / pyarrow (object_store keys),
* ``register(con)``: the filesystem registered on a DuckDB connection, so ``read_parquet`` of an
  ``s3://`` glob works without the httpfs extension (which cannot be downloaded here),
* ``put_atomic(path, data)``: write an object so that it is either absent/old or complete.

A single S3 PUT (and a multipart upload, at its completion) is atomic: an object is never visible
half-written, so ``put_atomic`` is one PUT; locally it is a temporary file, fsync and rename.

The secret key is a ``SecretStr`` until it is handed to s3fs / polars; ``Location``'s repr, its
errors and the log never show it (the config also registers it with ``redact``).
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, StoreError

if TYPE_CHECKING:
    import duckdb
    from fsspec import AbstractFileSystem

    from .config import NaviLinkConfig

SETTING = "NAVILINK_DATA_DIR"
DEFAULT_REGION = "us-east-1"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_FIX = "write it as s3://bucket/prefix (two slashes, lowercase s3), or give a local folder"


@dataclass(frozen=True)
class S3Credentials:
    """The store's endpoint and keys (the standard AWS variables); the secret never in the repr."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    region: str | None = None

    def __repr__(self) -> str:
        return (f"S3Credentials(endpoint_url={self.endpoint_url!r}, region={self.region!r}, "
                f"access_key_id={'set' if self.access_key_id else None}, "
                f"secret_access_key={'***' if self.secret_access_key else None})")


def parse_s3_url(value: str, setting: str = SETTING) -> tuple[str, str] | None:
    """``(bucket, prefix)`` for ``s3://bucket/prefix``; None for a local path; a
    ``ConfigurationError`` for anything that looks like a URL but is not a usable ``s3://`` one
    (``s3:/b``, ``s3:b``, ``S3://b``, ``s3a://b``, ``gs://b`` ...)."""
    text = value.strip()
    m = _SCHEME.match(text)
    looks_s3 = text.lower().startswith("s3") and (m is not None or text[2:3] in ("/", ":"))
    if m is None and not looks_s3:
        return None
    if m is not None and len(m.group(1)) == 1 and not looks_s3:
        return None  # a Windows drive letter, e.g. C:\data
    if not text.startswith("s3://"):
        raise ConfigurationError(f"{setting}={text[:80]!r} is not a usable storage URL: only "
                                 f"local folders and s3:// URLs are supported; fix: {_FIX}")
    rest = text[5:]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise ConfigurationError(f"{setting}={text[:80]!r}: {bucket[:64]!r} is not an S3 bucket "
                                 "name (3-63 lowercase letters, digits, dots, hyphens); fix: "
                                 "s3://my-bucket/optional/prefix")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ConfigurationError(f"{setting}={text[:80]!r}: the prefix may not hold '.' or '..'; "
                                 "fix: s3://bucket/a/b")
    return bucket, "/".join(parts)


@dataclass(frozen=True)
class Location:
    """A data location: a local folder (``root`` absolute) or an S3 bucket and prefix."""

    root: str  # fs path: "/abs/folder" or "bucket/prefix"
    is_remote: bool = False
    credentials: S3Credentials = field(default_factory=S3Credentials, repr=False)
    setting: str = field(default=SETTING, repr=False)

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def from_setting(cls, value: str | os.PathLike[str] | Location,
                     credentials: S3Credentials | None = None, *, setting: str = SETTING) -> Location:
        """A location from a setting's value (validated: see ``parse_s3_url``)."""
        if isinstance(value, Location):
            return value
        if isinstance(value, Path):
            if parse_s3_url(str(value), setting) is not None:  # not reached: Path() ate a slash
                raise ConfigurationError(f"{setting}={str(value)[:80]!r} is not a usable storage "
                                         f"URL (an s3 URL turned into a local path); fix: {_FIX}")
            return cls(os.path.abspath(value), setting=setting)
        parsed = parse_s3_url(str(value), setting)
        if parsed is None:
            return cls(os.path.abspath(Path(str(value)).expanduser()), setting=setting)
        bucket, prefix = parsed
        root = f"{bucket}/{prefix}" if prefix else bucket
        return cls(root, True, credentials or S3Credentials(), setting)

    @classmethod
    def from_config(cls, config: NaviLinkConfig) -> Location:
        return config.location

    # --- naming ------------------------------------------------------------------------------
    @property
    def bucket(self) -> str | None:
        return self.root.split("/", 1)[0] if self.is_remote else None

    @property
    def url(self) -> str:
        """The location as a URL (``s3://bucket/prefix``) or an absolute local path."""
        return f"s3://{self.root}" if self.is_remote else self.root

    def join(self, *parts: str) -> str:
        """A path in ``fs`` under the root; ``..`` cannot leave it (a ``StoreError``)."""
        if self.is_remote:
            p = posixpath.normpath(posixpath.join(self.root, *parts))
            inside = p == self.root or p.startswith(self.root + "/")
        else:
            p = os.path.normpath(os.path.join(self.root, *parts))
            inside = p == self.root or p.startswith(self.root.rstrip(os.sep) + os.sep)
        if not inside:
            raise StoreError(f"refusing to touch {p}: it is outside the data location {self.url}")
        return p

    def uri(self, path: str) -> str:
        """A path of ``fs`` (from ``join``) as a URL for DuckDB / polars."""
        return f"s3://{path}" if self.is_remote else path

    def relative(self, path: str) -> str:
        """A path of ``fs`` relative to the root (posix separators)."""
        path = path.removeprefix("s3://")
        rel = posixpath.relpath(path, self.root) if self.is_remote else os.path.relpath(path, self.root)
        return rel.replace(os.sep, "/")

    def __str__(self) -> str:
        return self.url

    # --- clients -----------------------------------------------------------------------------
    @cached_property
    def fs(self) -> AbstractFileSystem:
        if not self.is_remote:
            from fsspec.implementations.local import LocalFileSystem

            return LocalFileSystem()
        import s3fs

        c = self.credentials
        return s3fs.S3FileSystem(
            key=c.access_key_id, secret=c.secret_access_key, endpoint_url=c.endpoint_url,
            client_kwargs={"region_name": c.region or DEFAULT_REGION},
            config_kwargs={"retries": {"max_attempts": 3, "mode": "standard"},
                           "connect_timeout": 5, "read_timeout": 30},
            skip_instance_cache=True, use_listings_cache=False)

    def storage_options(self) -> dict[str, str] | None:
        """Options for ``pl.scan_parquet``/``read_parquet``/``write_parquet`` (None when local)."""
        if not self.is_remote:
            return None
        c = self.credentials
        opts = {"aws_region": c.region or DEFAULT_REGION}
        if c.access_key_id:
            opts["aws_access_key_id"] = c.access_key_id
        if c.secret_access_key:
            opts["aws_secret_access_key"] = c.secret_access_key
        if c.endpoint_url:
            opts["aws_endpoint_url"] = c.endpoint_url
            if c.endpoint_url.startswith("http://"):
                opts["aws_allow_http"] = "true"
        return opts

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let ``con`` read ``s3://`` paths and globs of this location (no-op when local)."""
        if not self.is_remote:
            return
        with contextlib.suppress(Exception):  # a connection keeps one filesystem per protocol
            con.unregister_filesystem("s3")
        con.register_filesystem(self.fs)

    # --- checks ------------------------------------------------------------------------------
    def check(self) -> None:
        """Fail early, naming the setting and the fix, when the store cannot be used: no
        endpoint answering, a bucket that does not exist, credentials refused. Never shows a key."""
        if not self.is_remote:
            return
        c = self.credentials
        where = c.endpoint_url or "AWS S3"
        if not (c.access_key_id and c.secret_access_key):
            raise ConfigurationError(
                f"{self.setting}={self.url} needs the store's credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for MinIO, Ceph or another "
                "S3-compatible store); they are separate from the NaviLink sign-in")
        try:
            self.fs.ls(self.bucket, refresh=True)
        except FileNotFoundError:
            raise ConfigurationError(
                f"{self.setting}={self.url}: the bucket {self.bucket!r} does not exist at {where}; "
                "fix: create it, or correct the bucket name or AWS_ENDPOINT_URL") from None
        except PermissionError:
            raise ConfigurationError(
                f"{self.setting}={self.url}: {where} refused the credentials (AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY) for the bucket; fix: check the keys and the bucket's "
                "policy") from None
        except Exception as exc:  # connection refused, DNS, timeouts: botocore/aiohttp types
            raise ConfigurationError(
                f"{self.setting}={self.url}: cannot reach the S3 endpoint {where} "
                f"({type(exc).__name__}); fix: set AWS_ENDPOINT_URL to the store's address "
                "(e.g. http://127.0.0.1:9000 for MinIO) and check that it runs") from None

    # --- files -------------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def find(self, path: str, suffix: str = ".parquet") -> dict[str, dict[str, Any]]:
        """Every file under ``path`` ending in ``suffix`` -> its info (``size``, ``mtime_ns``)."""
        if not self.is_remote:
            out: dict[str, dict[str, Any]] = {}
            for folder, _dirs, files in os.walk(path):
                for name in files:
                    if name.endswith(suffix):
                        full = os.path.join(folder, name)
                        try:
                            st = os.stat(full)
                        except FileNotFoundError:
                            continue
                        out[full] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            return out
        found = self.fs.find(path, detail=True)
        return {k: {"size": int(v.get("size") or 0), "mtime_ns": _mtime_ns(v)}
                for k, v in sorted(found.items()) if k.endswith(suffix)}

    def files(self, folder: str, pattern: str = "*.parquet") -> list[str]:
        """The files matching ``pattern`` directly in ``folder`` (sorted; [] when none)."""
        if not self.is_remote:
            return sorted(str(p) for p in Path(folder).glob(pattern)) if os.path.isdir(folder) else []
        try:
            names = self.fs.ls(folder, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        from fnmatch import fnmatch

        return sorted(n for n in names if fnmatch(posixpath.basename(n), pattern))

    def put_atomic(self, path: str, data: bytes | Path) -> int:
        """Write ``data`` (bytes or a local file) to ``path``: absent/old or complete, never torn.
        Returns the size in bytes."""
        if isinstance(data, Path):
            data = data.read_bytes()
        if self.is_remote:
            self.fs.pipe_file(path, data)
            return len(data)
        from .collect.store import atomic_write_bytes

        return atomic_write_bytes(data, Path(path))

    def write_parquet(self, df: Any, path: str, **kwargs: Any) -> int:
        """Write a polars frame as one Parquet object (see ``put_atomic``); returns bytes."""
        buf = io.BytesIO()
        df.write_parquet(buf, **kwargs)
        return self.put_atomic(path, buf.getvalue())

    def remove(self, path: str) -> None:
        """Delete one file; a missing one is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def read_bytes(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(path))


def _mtime_ns(info: dict[str, Any]) -> int:
    """A change token for an object: S3's LastModified has whole seconds, so an object replaced
    within the same second with the same size is told apart by its ETag (folded in)."""
    t = info.get("LastModified") or info.get("mtime")
    ns = 0 if t is None else int(t.timestamp() * 1e9) if hasattr(t, "timestamp") else int(float(t) * 1e9)
    etag = str(info.get("ETag") or "")
    if not etag:
        return ns
    import hashlib

    digest = hashlib.blake2b(etag.encode(), digest_size=4).digest()
    return ns + int.from_bytes(digest, "big") % 1_000_000_000
