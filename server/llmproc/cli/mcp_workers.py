"""`llmproc-mcp --workers N`: one HTTP port served by N processes that share the state store.

Each worker is a whole llmproc-mcp process listening on the same port with SO_REUSEPORT, so
the kernel spreads connections over them and no process relays any byte. They share
conversations through the store, taking turns on a process through its lease (store.py), so
a call may reach any worker. This supervisor reserves the port (bound, not listening: only
listening sockets are given connections), starts the workers, starts another when one dies,
and stops them all when it is stopped. A worker that loses its supervisor (kill -9) stops too:
it watches a pipe whose other end only the supervisor holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

SUPERVISOR_PIPE = "LLMPROC_SUPERVISOR_PIPE"
"""The worker's end of the pipe that closes when the supervisor is gone."""

RESTART_PAUSE = 1.0
"""Seconds before a worker that died is started again (a crash loop must not spin)."""

FAILED_START_SECONDS = 10.0
"""A worker that exits this soon after starting could not start: the server stops with it."""

log = logging.getLogger("llmproc.mcp_server")


async def supervise(argv: list[str], workers: int, port: int, url: str, programs: int) -> int:
    """Run `workers` workers of `argv` on `port` until cancelled (SIGINT, SIGTERM)."""
    from .session_router import WORKERS_DIR

    read_end, write_end = os.pipe()
    os.set_inheritable(read_end, True)
    command = [sys.executable, "-m", "llmproc.cli.mcp", *argv, "--port", str(port), "--workers", "1"]
    sockets = tempfile.mkdtemp(prefix="llmproc-workers-")  # private (0700): the workers' own sockets
    env = {**os.environ, SUPERVISOR_PIPE: str(read_end), WORKERS_DIR: sockets}
    running: dict[int, tuple[Any, float]] = {}

    async def start(index: int) -> None:
        process = await asyncio.create_subprocess_exec(
            *command, "--worker-index", str(index), pass_fds=(read_end,), env=env,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        running[index] = (process, time.monotonic())

    try:
        for index in range(workers):
            await start(index)
        print(f"llmproc-mcp: serving {programs} programs at {url} with {workers} workers", file=sys.stderr)
        while True:
            waits = {asyncio.ensure_future(p.wait()): i for i, (p, _) in running.items()}
            try:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pending in waits:
                    pending.cancel()
            for finished in done:
                index = waits[finished]
                process, started = running.pop(index)
                code = process.returncode
                if time.monotonic() - started < FAILED_START_SECONDS and code not in (0, None) and code > 0:
                    log.error("worker %d could not start (exit status %s); stopping", index, code)
                    return int(code)
                log.warning("worker %d ended (exit status %s); starting another", index, code)
                await asyncio.sleep(RESTART_PAUSE)
                await start(index)
    finally:
        await _stop_all([p for p, _ in running.values()])
        os.close(write_end)  # (only a supervisor that died without this reaches its workers so)
        os.close(read_end)
        shutil.rmtree(sockets, ignore_errors=True)


async def _stop_all(processes: list[Any]) -> None:
    """SIGTERM each worker (each finishes its open requests within its grace period), then
    SIGKILL what is still there."""
    from .mcp_http import GRACE_SECONDS

    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    waiting = [asyncio.ensure_future(p.wait()) for p in processes]
    if waiting:
        _, late = await asyncio.wait(waiting, timeout=GRACE_SECONDS + 10)
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if late:
            await asyncio.wait(late, timeout=10)


async def until_supervisor_leaves() -> None:
    """Return when this worker's supervisor is gone (its pipe closes); never without one."""
    fd = os.environ.get(SUPERVISOR_PIPE)
    if fd is None:
        await asyncio.Event().wait()
        return
    gone = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(int(fd), gone.set)  # readable at end of file: every writer closed it
    try:
        await gone.wait()
    finally:
        loop.remove_reader(int(fd))
    log.warning("the supervisor is gone: this worker stops")
    signal.raise_signal(signal.SIGTERM)  # and stops as on any SIGTERM: open requests finish first
