"""The kernel: process ids, the process table, and resources shared between processes.

Provider SDK clients hold connection pools bound to one event loop, so the kernel
shares one client per (event loop, configuration) among all processes that use it, and
closes them with the loop (`shared_clients`); MCP server connections are shared the
same way (`McpHub`). Cost budgets span a process tree.
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from .shared_clients import Closer, SharedClients
from .tools.mcp import McpHub

if TYPE_CHECKING:
    from .process import LLMProcess


class CostBudget:
    """USD a process tree may spend; a child's budget also charges its parent's."""

    def __init__(self, limit: float, parent: CostBudget | None = None) -> None:
        self.limit = limit
        self.spent = 0.0
        self.parent = parent

    def charge(self, cost: float | None) -> None:
        budget: CostBudget | None = self
        while budget is not None:
            budget.spent += cost or 0.0
            budget = budget.parent

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit or (self.parent is not None and self.parent.exhausted)

    def describe(self) -> str:
        budget: CostBudget = self
        while budget.spent < budget.limit and budget.parent is not None:
            budget = budget.parent
        return f"the cost budget of ${budget.limit:g} for this process tree is spent (${budget.spent:.4f})"


class Kernel:
    def __init__(self) -> None:
        self._clients = SharedClients()
        self.processes: weakref.WeakValueDictionary[str, LLMProcess] = weakref.WeakValueDictionary()
        self.mcp = McpHub()

    @staticmethod
    def new_process_id() -> str:
        """An unguessable id (128 random bits), safe to hand to MCP clients."""
        return secrets.token_urlsafe(16)

    def register(self, process: LLMProcess) -> None:
        self.processes[process.id] = process

    def shared_client(
        self, key: Hashable, factory: Callable[[], Any], close: Closer = lambda client: client.close()
    ) -> Any:
        """The client for `key` on the running event loop, made once by `factory` and closed
        by `close` when the loop shuts down."""
        return self._clients.get(key, factory, close)


default_kernel = Kernel()
