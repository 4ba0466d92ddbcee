"""Drive coroutines from synchronous code on one persistent event loop per thread.

A persistent loop keeps shared SDK clients (bound to their loop) usable across calls.
If the caller is interrupted (Ctrl-C), the run is cancelled before the exception
propagates, so it can not finish later and change the process behind the caller's back.
At exit the loops are shut down as `asyncio.run` would, which closes the shared clients.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_local = threading.local()
_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
        _loops.add(loop)
    return loop


@atexit.register
def _shut_down() -> None:
    for loop in list(_loops):
        if loop.is_running() or loop.is_closed():
            continue
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())  # closes the loop's shared clients
        loop.close()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    loop = _loop()
    task = loop.create_task(coroutine)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
        raise


def either(coroutine: Coroutine[Any, Any, T]) -> Any:
    """The coroutine itself inside a running event loop (to await), else its result: how one
    async method serves sync callers too, with no twin."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run(coroutine)
    return coroutine


class LoopLocks:
    """One asyncio.Lock per event loop (a lock is bound to the loop it is first used on), so an
    object used from sync code (its own loop) and from async code (the caller's) serialises both."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def current(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        return self._locks.get(loop) or self._locks.setdefault(loop, asyncio.Lock())

    def existing(self) -> asyncio.Lock | None:
        return self._locks.get(asyncio.get_running_loop())
