"""Log redaction: the formatted text of every handler the project sets up is masked (message, args,
exception text and stack), only live secrets are kept, and short passwords are masked too."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from navilink_etl import NaviLinkClient, NaviLinkConfig
from navilink_etl.cloud.auth import Authenticator, Tokens
from navilink_etl.redact import RedactingFormatter, SecretSet, install, live_secrets, redact

from .cloud_helpers import EMAIL, PASSWORD, fake_rest, stub_devices

SECRETS = {
    "password": "Pw-0f-the-0wner",
    "access_token": "eyJhbGciOiJIUzI1NiJ9.access.token-payload",
    "refresh_token": "refresh-token-9f8e7d6c5b4a",
    "id_token": "eyJraWQiOiJpZCJ9.id.token-payload",
    "access_key_id": "ASIAEXAMPLEKEYID0001",
    "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "session_token": "IQoJb3JpZ2luX2VjEXAMPLE//////////sessiontoken==",
}
_SCRIPT = r'''
import logging, sys
from pathlib import Path
from navilink_etl.cloud.auth import Authenticator, Tokens
from navilink_etl.config import load_config
s = dict(line.split("=", 1) for line in sys.argv[3:])
if sys.argv[2] == "collect":
    from navilink_etl.collect.logs import setup_logging
    setup_logging(Path(sys.argv[1]), "DEBUG", debug=True)
else:
    from navilink_etl.cli import _setup_logging
    _setup_logging("DEBUG")
load_config(email="owner@example.com", password=s["password"])  # registers the configured password
auth = Authenticator(None, "https://example.com/api", "ua")
auth._set_tokens(Tokens.from_sign_in({"accessToken": s["access_token"], "refreshToken": s["refresh_token"],
    "idToken": s["id_token"], "accessKeyId": s["access_key_id"], "secretKey": s["secret_key"],
    "sessionToken": s["session_token"]}))
log = logging.getLogger("navilink_etl.redaction_probe")
values = list(s.values())
for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
    try:
        raise RuntimeError("boom " + " ".join(values))
    except RuntimeError:
        log.log(level, "failed with %s and %r", values[0], {"keys": values}, exc_info=True, stack_info=True)
    log.log(level, "marker-%s " + " ".join(values), logging.getLevelName(level))
try:
    raise ValueError(repr(values))
except ValueError:
    log.exception("exception text %s", values[-1])
'''


@pytest.mark.parametrize("setup", ["collect", "cli"])
def test_a_traceback_full_of_secrets_reaches_no_handler_output(tmp_path: Path, setup: str) -> None:
    data = tmp_path / "data"
    args = [f"{k}={v}" for k, v in SECRETS.items()]
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(data), setup, *args], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:].replace(SECRETS["password"], "<pw>")
    outputs = {"stderr": proc.stderr, "stdout": proc.stdout}
    if setup == "collect":
        outputs["collector.log"] = (data / "logs" / "collector.log").read_text()
    for name, text in outputs.items():
        leaked = [k for k, v in SECRETS.items() if v in text]
        assert leaked == [], f"{leaked} in {name}"
    out = outputs.get("collector.log", proc.stderr)
    # the records really were written, with their tracebacks and stacks, at every level
    for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        assert f"marker-{level}" in out
    assert out.count("Traceback (most recent call last)") >= 6 and "Stack (most recent call last)" in out
    assert "boom ***" in out


def test_reprs_and_exception_texts_hold_no_secret() -> None:
    auth = Authenticator(None, "https://example.com/api", "ua")  # type: ignore[arg-type]
    tokens = Tokens.from_sign_in({"accessToken": SECRETS["access_token"], "refreshToken": SECRETS["refresh_token"],
                                  "idToken": SECRETS["id_token"], "accessKeyId": SECRETS["access_key_id"],
                                  "secretKey": SECRETS["secret_key"], "sessionToken": SECRETS["session_token"]})
    auth._set_tokens(tokens)
    texts = [repr(auth), repr(tokens), str(tokens), repr(auth._secrets)]
    assert not [v for v in SECRETS.values() for t in texts if v in t]
    auth.forget()
    assert not set(SECRETS.values()) & live_secrets()


def _record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("x", logging.INFO, __file__, 1, msg, None, None)


@pytest.mark.parametrize(("password", "text", "want"), [
    ("hunt2", "password hunt2 rejected", "password *** rejected"),
    ("hunt2", "the hunt2go word", "the hunt2go word"),  # 4-5 characters: whole words only
    ("ab", "sent {'password': 'ab'} and password=ab", "sent {'password': '***'} and password=***"),
    ("ab", "a tab about abc", "a tab about abc"),  # 1-3 characters: only as a quoted or assigned value
    ("1", "user_seq=1 count 1", "user_seq=*** count 1"),
])  # fmt: skip
def test_short_passwords_are_masked_where_they_stand_as_values(password: str, text: str, want: str) -> None:
    holder = SecretSet()
    holder.set("password", password)
    try:
        assert RedactingFormatter(logging.Formatter("%(message)s")).format(_record(text)) == want
    finally:
        holder.clear()


def test_install_wraps_the_existing_formatter_once() -> None:
    h = logging.StreamHandler()
    h.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    install(install(h))
    assert isinstance(h.formatter, RedactingFormatter)
    assert not isinstance(h.formatter.inner, RedactingFormatter)
    holder = SecretSet()
    holder.set("k", "a-long-secret-value")
    assert h.format(_record("x a-long-secret-value y")) == "[INFO] x *** y"
    holder.clear()
    assert redact("a-long-secret-value") == "a-long-secret-value"  # dropped secrets are no longer masked


def _cost_us(n: int = 2000) -> float:
    fmt = RedactingFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    rec = _record("device 047863320001 status 120 F, 4500 W, charge 80 %, nothing secret here at all")
    t0 = time.perf_counter()
    for _ in range(n):
        fmt.format(rec)
    return (time.perf_counter() - t0) / n * 1e6


async def test_the_registry_keeps_only_live_tokens_across_1000_refreshes() -> None:

    async with fake_rest(stub_devices(1)) as (fr, url):
        fr.tokens.rotate_refresh = True  # every refresh hands out a new refresh token as well
        async with NaviLinkClient(config=NaviLinkConfig(email=EMAIL, password=PASSWORD, rest_base_url=url)) as c:
            await c.authenticate()
            base = len(live_secrets())
            cost0 = min(_cost_us() for _ in range(3))
            old = set()
            for _ in range(1000):
                token = c.auth.tokens.access_token  # type: ignore[union-attr]
                old.add(token)
                await c.auth.on_unauthorized(token)  # one real POST /auth/refresh each
            assert c.auth.refresh_count == 1000
            assert len(live_secrets()) == base  # replaced, not added
            assert not old & live_secrets()
            cost1 = min(_cost_us() for _ in range(3))
            assert cost1 < cost0 * 3 + 5, (cost0, cost1)  # flat (noise allowed), not 1000x the secrets
    assert not (fr.tokens.issued_secrets() & live_secrets())  # close() dropped every token


async def test_a_rejected_sign_in_leaves_no_e_mail_in_the_events(tmp_path: Path) -> None:
    from navilink_etl.collect.run import run_collection
    from navilink_etl.collect.store import scan_dataset
    from navilink_etl.sim.cloud import FakeCloud

    owner = "owner.person@example.com"
    data = tmp_path / "data"
    async with FakeCloud(n_devices=1, accounts={owner: "the-right-password"}) as fc:
        over = fc.client_overrides() | {"email": owner, "password": SecretStr("a-wrong-password")}
        cfg = NaviLinkConfig(data_dir=data, timezone="UTC").model_copy(update=over)
        stats = await run_collection(cfg, interval=60, duration_min=0.2, clock=fc.clock, mode="cloud",
                                     status_line=False)
    assert stats.fatal and "NAVILINK_PASSWORD" in stats.fatal and owner not in stats.fatal
    events = scan_dataset(data, "events").collect()
    assert "auth_failed" in set(events.get_column("kind"))
    assert not [d for d in events.get_column("detail").to_list() if d and owner in d]
