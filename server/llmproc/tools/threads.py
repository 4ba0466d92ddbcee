"""The threads sync tools run on: a bounded pool of their own.

A sync tool that blocks past its timeout is abandoned, but its thread can not be stopped.
On asyncio's shared default executor such threads pile up until nothing else runs there
(the state store's commits, DNS look-ups): five `read_file` calls of a FIFO hung a whole
server. Here abandoned threads can only fill this pool; tool calls then wait for a free
thread and time out as tool errors, while everything else keeps its own threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

MAX_TOOL_THREADS = 16
"""Sync tool calls running at once, in all processes of this interpreter."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _tool_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_TOOL_THREADS, thread_name_prefix="llmproc-tool")
        return _pool


async def run_sync_tool(function: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a sync tool on the tool pool with the caller's context variables (as to_thread does)."""
    call = functools.partial(contextvars.copy_context().run, function, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_tool_pool(), call)
