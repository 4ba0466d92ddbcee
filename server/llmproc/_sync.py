"""Drive coroutines from synchronous code on one persistent event loop per thread.

A persistent loop keeps shared SDK clients (bound to their loop) usable across calls.
If the caller is interrupted (Ctrl-C), the run is cancelled before the exception
propagates, so it can not finish later and change the process behind the caller's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_local = threading.local()


def _loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop


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
