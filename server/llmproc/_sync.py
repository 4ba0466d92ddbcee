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
