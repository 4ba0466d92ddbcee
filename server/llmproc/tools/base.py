"""The one small interface every source of tools implements: list tools, call a tool.

Function tools, builtin tools, system calls and MCP servers are all Toolsets; the
process routes a call by name and never needs to know which kind answered. Tools that
need to know who called them (system calls) read `current_call`, which the router sets
for the duration of each call.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..messages import ImageBlock, TextBlock, ToolCallBlock
from ..run_state import RunState

Access = Literal["read", "write", "admin"]
ACCESS_RANK: dict[str, int] = {"read": 0, "write": 1, "admin": 2}


def allows(limit: Access, access: Access) -> bool:
    """Whether a process limited to `limit` may use a tool that needs `access`."""
    return ACCESS_RANK[access] <= ACCESS_RANK[limit]


def lowest(*levels: Access) -> Access:
    return min(levels, key=ACCESS_RANK.__getitem__)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the model is told about a tool: name, description, JSON schema of its arguments.

    `access` is what the tool may do (read / write / admin); `timeout` overrides the
    process's tool timeout (MCP servers may set their own).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    access: Access = "read"
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    content: tuple[TextBlock | ImageBlock, ...]
    is_error: bool = False

    @classmethod
    def text(cls, text: str, *, is_error: bool = False) -> ToolOutcome:
        return cls((TextBlock(text),), is_error)


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling: the tool call and the run it belongs to (system calls need both)."""

    call: ToolCallBlock
    run: RunState


current_call: ContextVar[CallContext | None] = ContextVar("llmproc_current_call", default=None)


class Toolset(Protocol):
    def specs(self) -> list[ToolSpec]: ...

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome: ...
