"""Several NaviLink accounts for one collector: ``NAVILINK_ACCOUNTS_FILE`` (TOML or JSON).

TOML::

    [[accounts]]
    email = "installer@example.com"
    password = "..."

JSON: ``{"accounts": [{"email": ..., "password": ...}]}`` or just the list. The account of
``NAVILINK_EMAIL`` / ``NAVILINK_PASSWORD``, when set, is added unless the file names it too.

The file holds passwords: it should be readable by its owner only (``chmod 600``; a warning names
it otherwise, as for ``.env``). Every password is registered with the log redaction as soon as it
is read, and no error, log line or repr ever shows one (errors name the entry's position and field).
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..config import NaviLinkConfig, warn_if_shared
from ..errors import ConfigurationError
from ..redact import SecretSet

log = logging.getLogger(__name__)

SETTING = "NAVILINK_ACCOUNTS_FILE"
_secrets = SecretSet()  # every password read from an accounts file, masked in all logs


@dataclass(frozen=True)
class Account:
    email: str
    password: SecretStr = field(repr=False)

    def __repr__(self) -> str:
        return f"Account(email={self.email!r})"


def _bad(path: Path, why: str) -> ConfigurationError:
    return ConfigurationError(f"{SETTING} ({path}): {why}; fix: a TOML file with [[accounts]] tables "
                              "(email = \"...\", password = \"...\") or a JSON list of {\"email\", "
                              "\"password\"} objects, see .env.template")


def read_accounts_file(path: Path) -> list[Account]:
    """The accounts listed in ``path``; a clear ``ConfigurationError`` for anything unusable."""
    warn_if_shared(path, "holds NaviLink passwords")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, f"cannot be read ({type(exc).__name__})") from None
    data: Any
    if path.suffix.lower() == ".json" or (path.suffix.lower() != ".toml" and text.lstrip()[:1] in ("[", "{")
                                          and not text.lstrip().startswith("[[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:  # the message gives the position, never the content
            raise _bad(path, f"is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            where = str(exc).rsplit("(", 1)[-1].rstrip(")") if "(" in str(exc) else "?"
            raise _bad(path, f"is not valid TOML ({where})") from None
    entries = data.get("accounts") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise _bad(path, "lists no accounts")
    out: list[Account] = []
    seen: set[str] = set()
    for i, e in enumerate(entries, 1):
        if not isinstance(e, dict):
            raise _bad(path, f"account {i} is not a table/object")
        email, pw = e.get("email"), e.get("password")
        if isinstance(pw, str) and pw:
            _secrets.set(f"{path}#{i}", pw)  # masked before anything else can mention it
        if not isinstance(email, str) or "@" not in email.strip():
            raise _bad(path, f"account {i} has no usable 'email'")
        if not isinstance(pw, str) or not pw:
            raise _bad(path, f"account {i} ({email.strip()}) has no 'password'")
        key = email.strip().lower()
        if key in seen:
            raise _bad(path, f"account {i} repeats {email.strip()}")
        seen.add(key)
        out.append(Account(email.strip(), SecretStr(pw)))
    return out


def collector_accounts(config: NaviLinkConfig) -> list[Account]:
    """The accounts one collector serves: the accounts file's, plus NAVILINK_EMAIL's if not listed."""
    accounts = read_accounts_file(config.accounts_file) if config.accounts_file is not None else []
    if config.email and config.password is not None and \
            config.email.strip().lower() not in {a.email.lower() for a in accounts}:
        accounts.insert(0, Account(config.email, config.password))
    return accounts
