"""The MCP client a process is running for, as the layers below the MCP server see it.

llmproc-mcp sets `current_client` for the length of every run it serves. A provider that
needs the client itself (mcp_sampling asks the client's own model) reads it; the server
never needs to know which provider that is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClientChannel:
    """The client's MCP session (requests back to it), and the id of the tool call running.

    `ask`, when set, delivers a request another way: under MCP 2026-07-28 the server returns
    it to the client as an input_required round and resumes when the answer comes back.
    """

    session: Any
    request_id: Any
    ask: Callable[[Any], Awaitable[Any]] | None = None


current_client: ContextVar[ClientChannel | None] = ContextVar("llmproc_client_channel", default=None)
