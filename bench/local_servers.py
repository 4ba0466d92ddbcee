"""The local servers the benchmarks start: the fake provider, and a free loopback port to wait on."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for_port(port: int, attempts: int = 300) -> None:
    """Return once something accepts connections on 127.0.0.1:`port`."""
    for _ in range(attempts):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def fake_provider() -> Iterator[str]:
    """The tests' fake provider in a subprocess (latency BENCH_LATENCY, default 0.2 s); yields its URL."""
    fake = subprocess.Popen(
        [sys.executable, "-m", "fake_provider", "--latency", os.environ.get("BENCH_LATENCY", "0.2")],
        cwd=ROOT / "tests", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield fake.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        fake.stdin.close()  # type: ignore[union-attr]
        fake.wait(timeout=10)
