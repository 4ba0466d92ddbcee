"""Shared provider clients: closed when their event loop shuts down, and forgotten with it."""

from __future__ import annotations

import asyncio
import gc
import weakref

from llmproc.kernel import Kernel


class FakeClient:
    def __init__(self, closed: list[FakeClient]) -> None:
        self.closed = closed

    async def close(self) -> None:
        self.closed.append(self)


def test_each_loop_gets_its_own_clients_closed_when_it_ends_and_nothing_is_kept() -> None:
    kernel, closed = Kernel(), []
    made: list[FakeClient] = []
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def use() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        first = kernel.shared_client("key", lambda: FakeClient(closed))
        assert kernel.shared_client("key", lambda: FakeClient(closed)) is first  # shared on this loop
        made.append(first)

    for _ in range(20):
        asyncio.run(use())
    assert len(set(map(id, made))) == 20 and closed == made  # one per loop, each closed at its end
    loop = asyncio.new_event_loop()  # closed without shutting down: forgotten when next asked
    loop.run_until_complete(use())
    loop.close()
    del loop
    asyncio.run(use())
    gc.collect()
    assert kernel._clients._loops == {}
    assert all(ref() is None for ref in loops)  # no ended loop is kept alive by its clients


def test_a_client_that_fails_to_close_does_not_keep_the_others_open() -> None:
    kernel, closed = Kernel(), []

    class Broken(FakeClient):
        async def close(self) -> None:
            raise OSError("already gone")

    async def use() -> None:
        kernel.shared_client("broken", lambda: Broken(closed))
        kernel.shared_client("fine", lambda: FakeClient(closed))

    asyncio.run(use())
    assert len(closed) == 1 and type(closed[0]) is FakeClient
