"""The stdio wire's input, read so that a server can stop while stdin is still open.

The SDK reads stdin in a worker thread that shutdown must wait for, and a blocked `readline`
returns only when the client writes or closes the pipe: Ctrl-C or SIGTERM left the server
running for as long as the host kept stdin open (Claude Code stops servers with SIGINT, then
SIGTERM). Here a daemon thread reads the lines and nothing waits for it: stopping the server
leaves it blocked until the process exits, which ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator

from ..errors import ServeError

_QUEUED_LINES = 16
"""Lines read ahead of the server; past that the reader waits (backpressure, as the SDK's)."""


class StdinLines:
    """`async for line in StdinLines(fd)`: the protocol lines arriving on `fd`."""

    def __init__(self, fd: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(_QUEUED_LINES)
        wire = io.TextIOWrapper(os.fdopen(fd, "rb", closefd=False), encoding="utf-8", errors="replace")
        threading.Thread(target=self._pump, args=(wire,), name="llmproc-stdin", daemon=True).start()

    def _pump(self, wire: io.TextIOWrapper) -> None:
        try:
            for line in wire:
                self._hand_over(line)
        except (OSError, ValueError):
            pass
        with contextlib.suppress(RuntimeError):
            self._hand_over(None)  # end of input

    def _hand_over(self, line: str | None) -> None:
        """Queue a line from the reading thread; raises RuntimeError once the loop has closed."""
        asyncio.run_coroutine_threadsafe(self._queue.put(line), self._loop).result()

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        line = await self._queue.get()
        if line is None:
            raise StopAsyncIteration
        return line


@contextlib.contextmanager
def claimed_stdin() -> Iterator[int]:
    """A private copy of fd 0 for the wire, with fd 0 itself pointed at the null device, so
    nothing else in the process (or a child it starts) can read protocol bytes; restored after."""
    try:
        sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        raise ServeError("stdin is not a file descriptor; the stdio transport needs one") from None
    private = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        yield private
    finally:
        os.dup2(private, 0)  # the reading thread may still use `private`: it is never closed
