"""The kernel: process ids, the process table, and resources shared between processes.

Provider SDK clients hold connection pools bound to one event loop, so the kernel
shares one client per (event loop, configuration) among all processes that use it.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .process import LLMProcess


class Kernel:
    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self.processes: weakref.WeakValueDictionary[str, LLMProcess] = weakref.WeakValueDictionary()

    @staticmethod
    def new_process_id() -> str:
        """An unguessable id (128 random bits), safe to hand to MCP clients."""
        return secrets.token_urlsafe(16)

    def register(self, process: LLMProcess) -> None:
        self.processes[process.id] = process

    def shared_client(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        """The client for `key` on the running event loop, created once by `factory`."""
        loop = asyncio.get_running_loop()
        clients = self._clients.setdefault(loop, {})
        client = clients.get(key)
        if client is None:
            client = clients[key] = factory()
        return client


default_kernel = Kernel()
