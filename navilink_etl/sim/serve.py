"""Run the offline fake cloud in the foreground and print the settings that point a client at it."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import sys
from collections.abc import Callable

from .agent import Latency
from .cloud import FakeCloud


def export_lines(env: dict[str, str]) -> list[str]:
    """``export NAVILINK_X=...`` lines, shell-quoted, so ``eval "$(...)"`` works."""
    return [f"export {k}={shlex.quote(v)}" for k, v in env.items()]


async def serve(
    n_devices: int = 1,
    speed: float = 1.0,
    seed: int = 0,
    latency_s: Latency = 0.2,
    print_fn: Callable[[str], object] = print,
    hostile: bool = False,
) -> None:
    """Start the fake cloud, print one ``export`` line per setting, and run until SIGINT, SIGTERM or
    cancellation.

    ``latency_s`` may be a (low, high) range for random reply delays, e.g. (2, 4) like the real cloud.
    The CA file lives in a temporary directory that is removed on every way out.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with FakeCloud(n_devices=n_devices, speed=speed, seed=seed, latency_s=latency_s,
                             hostile=hostile) as fc:
            for line in export_lines(fc.env()):
                print_fn(line)
            sys.stdout.flush()  # visible at once even when piped (e.g. into a file to source)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
