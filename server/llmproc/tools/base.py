"""The one small interface every source of tools implements: list tools, call a tool.

Function tools, builtin tools, system calls and MCP servers are all Toolsets; the
process routes a call by name and never needs to know which kind answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..messages import ImageBlock, TextBlock

Access = Literal["read", "write", "admin"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the model is told about a tool: name, description, JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    access: Access = "read"


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    content: tuple[TextBlock | ImageBlock, ...]
    is_error: bool = False

    @classmethod
    def text(cls, text: str, *, is_error: bool = False) -> ToolOutcome:
        return cls((TextBlock(text),), is_error)


class Toolset(Protocol):
    def specs(self) -> list[ToolSpec]: ...

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome: ...
