"""Collector logging: a rotated file under ``data_dir/logs`` and, when nobody set one up, the console.

Every handler added here masks registered secrets (``redact.RedactingFilter``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path

from ..redact import install

LOG_FILE = "collector.log"
MAX_BYTES = 5_000_000
BACKUPS = 5
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_QUIET = ("amqtt", "transitions", "apscheduler", "aiohttp.access", "websockets", "awscrt")


def setup_logging(data_dir: Path, level: str = "INFO", *, debug: bool = False) -> Callable[[], None]:
    """Attach the collector's handlers; returns a function that removes them again."""
    lvl = logging.DEBUG if debug else logging.getLevelName(level)
    root = logging.getLogger()
    added: list[logging.Handler] = []
    logs = Path(data_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    fh = RotatingFileHandler(logs / LOG_FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    fh.setFormatter(logging.Formatter(_FORMAT))
    fh.setLevel(lvl)
    added.append(install(fh))
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(logging.Formatter(_FORMAT))
        sh.setLevel(lvl)
        added.append(install(sh))
    for h in added:
        root.addHandler(h)
    old_level = root.level
    if root.level == logging.NOTSET or root.level > lvl:
        root.setLevel(lvl)
    quiet_old = {}
    for name in _QUIET:
        lg = logging.getLogger(name)
        quiet_old[name] = lg.level
        lg.setLevel(max(logging.WARNING, lvl) if not debug else logging.INFO)

    def teardown() -> None:
        for h in added:
            root.removeHandler(h)
            h.close()
        root.setLevel(old_level)
        for name, old in quiet_old.items():
            logging.getLogger(name).setLevel(old)

    return teardown
