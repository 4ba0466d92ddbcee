"""`llmproc-mcp` run in a thread of the test process, so a test can count what it holds:
its event loop's tasks, the process's file descriptors and child processes, its processes
and sessions, and the memory it allocates."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from http_servers import free_port
from llmproc.cli.mcp import _parser, serve

T = TypeVar("T")


@dataclass(frozen=True)
class Holdings:
    tasks: int
    fds: int
    children: int
    processes: int
    sessions: int


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # zombies have exited
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


class ServerThread:
    def __init__(self, programs: Path, *extra: str, transport: str = "streamable-http") -> None:
        self.port = free_port()
        self.args = _parser().parse_args(
            ["--programs", str(programs), "--transport", transport, "--port", str(self.port), *extra]
        )
        path = "/mcp" if transport == "streamable-http" else "/sse"
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.server: Any = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[int] | None = None

    def __enter__(self) -> ServerThread:
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the server did not start"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server does not accept connections")

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._task is not None
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(30)

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        def started(server: Any) -> None:
            self.server = server
            self._ready.set()

        self._task = self._loop.create_task(serve(self.args, started=started))
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:  # as asyncio.run does: libraries' own tasks (sse_starlette's shutdown watcher)
            leftover = asyncio.all_tasks(self._loop)  # end here, not when the garbage collector
            for task in leftover:  # finds them in a later test
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def call(self, function: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        """Run `function()` on the server's event loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(function(), self._loop).result(timeout)  # type: ignore[arg-type]

    def holdings(self) -> Holdings:
        async def count() -> Holdings:
            manager = self.server.mcp.session_manager if self.args.transport == "streamable-http" else None
            return Holdings(
                tasks=len(asyncio.all_tasks()),
                fds=len(os.listdir("/proc/self/fd")),
                children=len(descendants(os.getpid())),
                processes=len(self.server.table),
                sessions=len(manager._server_instances) if manager else 0,
            )

        return self.call(count)

    async def steady(self, quiet: float = 1.5, timeout: float = 30.0) -> Holdings:
        """Holdings once no process is in memory and nothing has changed for `quiet` seconds: a
        baseline taken after idle connections (the provider SDK's pool closes them on a timer),
        processes and their MCP servers have gone, not halfway through."""
        deadline = time.monotonic() + timeout
        last, since = await asyncio.to_thread(self.holdings), time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            now = await asyncio.to_thread(self.holdings)
            if now != last or now.processes:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return now
        raise AssertionError(f"the server never settled: {last}")

    async def settle(self, expected: Holdings, timeout: float = 20.0) -> Holdings:
        """Holdings once they are back to `expected` (or whatever they are at the deadline)."""
        deadline = time.monotonic() + timeout
        while (now := await asyncio.to_thread(self.holdings)) != expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return now
