"""Provider SDK clients shared by every process on one event loop, and closed with it.

A client's connection pool (aiohttp's, under all three SDKs) belongs to the loop it was
made on. Left open when that loop ends, each pool would be reported as "Unclosed client
session" by the garbage collector, so the clients of a loop are closed when the loop shuts
its async generators down, as `asyncio.run` and `asyncio.Runner` do when they finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Hashable
from typing import Any, cast

log = logging.getLogger("llmproc")

Closer = Callable[[Any], Awaitable[Any]]


class LoopClients:
    """The shared clients of one event loop."""

    def __init__(self, forget: Callable[[], object]) -> None:
        self._clients: dict[Hashable, tuple[Any, Closer]] = {}
        self._forget = forget  # called once the clients are closed at shutdown
        # An async generator the loop knows of (its first step registers it): the loop closes
        # it on shutdown, and its `finally` closes the clients. Held here: the loop's set is weak.
        self._watch = self._until_shutdown()
        first_step = cast(Coroutine[Any, Any, None], self._watch.__anext__())
        with contextlib.suppress(StopIteration):
            first_step.send(None)

    def get(self, key: Hashable, factory: Callable[[], Any], close: Closer) -> Any:
        entry = self._clients.get(key)
        if entry is None:
            entry = self._clients[key] = (factory(), close)
        return entry[0]

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client, close in clients.values():
            try:
                await close(client)
            except Exception as err:  # a pool that fails to close must not stop the others
                log.debug("closing a provider client failed: %s", err)

    async def _until_shutdown(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.aclose()
            self._forget()


class SharedClients:
    """One `LoopClients` per running event loop, dropped when its loop shuts down or is found
    closed. (Not a WeakKeyDictionary: the loop's async generator hook keeps a strong reference
    to the loop, so a weak key would never go.)"""

    def __init__(self) -> None:
        self._loops: dict[asyncio.AbstractEventLoop, LoopClients] = {}

    def get(self, key: Hashable, factory: Callable[[], Any], close: Closer) -> Any:
        loop = asyncio.get_running_loop()
        clients = self._loops.get(loop)
        if clients is None:
            for gone in [other for other in self._loops if other.is_closed()]:  # closed, never shut down
                del self._loops[gone]
            clients = self._loops[loop] = LoopClients(lambda: self._loops.pop(loop, None))
        return clients.get(key, factory, close)
