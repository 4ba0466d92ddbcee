"""The kernel: process ids, the process table, and resources shared between processes.

Provider SDK clients hold connection pools bound to one event loop, so the kernel
shares one client per (event loop, configuration) among all processes that use it, and
closes them with the loop (`shared_clients`); MCP server connections are shared the
same way (`McpHub`).
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from .shared_clients import Closer, SharedClients
from .tools.mcp import McpHub


class KernelProcess(Protocol):
    """What the process table knows of a process: its id and its parent's."""

    @property
    def id(self) -> str: ...

    @property
    def parent_id(self) -> str | None: ...


class Kernel:
    def __init__(self) -> None:
        self._clients = SharedClients()
        self.processes: weakref.WeakValueDictionary[str, KernelProcess] = weakref.WeakValueDictionary()
        self.mcp = McpHub()

    @staticmethod
    def new_process_id() -> str:
        """An unguessable id (128 random bits), safe to hand to MCP clients."""
        return secrets.token_urlsafe(16)

    def register(self, process: KernelProcess) -> None:
        self.processes[process.id] = process

    def children_of(self, process_id: str) -> list[str]:
        """The ids of the live processes whose parent is `process_id`, sorted."""
        return sorted(p.id for p in self.processes.values() if p.parent_id == process_id)

    def shared_client(
        self, key: Hashable, factory: Callable[[], Any], close: Closer = lambda client: client.close()
    ) -> Any:
        """The client for `key` on the running event loop, made once by `factory` and closed
        by `close` when the loop shuts down."""
        return self._clients.get(key, factory, close)


default_kernel = Kernel()
