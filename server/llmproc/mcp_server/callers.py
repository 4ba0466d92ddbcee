"""Who is calling, how deeply nested the call is, and how each handshake-era client hears
that the tools changed.

An owner names the caller a process belongs to: the principal an HTTP request authenticated
as (a bearer token: the same on every replica, in every session and protocol era), else the
stdio connection, an SSE connection or a 2025-era Streamable HTTP session; None when there is
none (2026-07-28 has no sessions, so a process belongs to whoever holds its unguessable id).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Literal

from ..composition import DEPTH_HEADER, composition_depth
from .handles import Owner
from .tool_server import ToolCall

Transport = Literal["stdio", "sse", "streamable-http"]

PRINCIPAL_KEY = "llmproc.principal"
"""Where the HTTP front door puts the principal a request authenticated as, in its ASGI scope."""


def is_sessionless(call: ToolCall) -> bool:
    """Whether the request came in the 2026-07-28 era, which has no sessions."""
    return str(call.protocol_version or "").startswith("2026")


def caller_of(call: ToolCall, transport: Transport, *, principal: bool = True) -> Owner:
    """Who is calling: the connection, or a 2025-era HTTP session; None when there is neither.

    Only a session the SDK's transport knows names a caller: a 2026-07-28 request has no
    session, so an `mcp-session-id` header on one (a 2025-era session's, or made up) is the
    caller's own choice and must never pass for an identity. `principal=False`: the connection
    or session itself, even when the request authenticated as a principal."""
    if transport == "stdio":
        return stdio_owner()
    request = call.http_request
    if request is None:
        return None
    name = request.scope.get(PRINCIPAL_KEY) if principal else None
    if name is not None:
        return f"principal:{name}"
    if transport == "sse":  # the connection itself: its id is checked by the transport
        session = request.query_params.get("session_id")
        return f"sse:{session}" if session else None
    if is_sessionless(call):
        return None
    session = request.headers.get("mcp-session-id")
    return f"http:{session}" if session else None


LEGACY_STDIO_OWNER = "stdio"
"""How stores written before stdio owners named their directory recorded them: any stdio caller's."""


@functools.cache
def stdio_owner() -> str:
    """The stdio client: one per server process, named by the directory the host started it in.

    With the state kept on disk by default, every stdio server of a user shares one file: a
    host's default conversations must survive its restarts (Claude Desktop restarts its servers
    on every launch) without Claude Code in one project continuing the conversation it had in
    another. Hosts start servers in the project's directory (Claude Code, Gemini CLI, VS Code),
    so that directory is the scope: conversations and list_processes are per project."""
    try:
        return f"stdio:{os.getcwd()}"
    except OSError:  # the directory was removed under us
        return LEGACY_STDIO_OWNER


def depth_of(call: ToolCall) -> int:
    """How deeply this request is nested: its depth header over HTTP, else this server's own."""
    request = call.http_request
    given = request.headers.get(DEPTH_HEADER) if request is not None else None
    if given is not None:
        try:
            return max(0, int(given))
        except ValueError:
            pass
    return composition_depth()


class LegacySessions:
    """The handshake-era sessions that called: how each hears that tools or resources changed (the
    2026-07-28 era listens on subscriptions/listen instead). Keyed by connection or session,
    not by principal: one principal may have many sessions open."""

    def __init__(self) -> None:
        self._sessions: dict[str, Any] = {}

    def seen(self, call: ToolCall, transport: Transport) -> None:
        key = caller_of(call, transport, principal=False)
        if key is not None and not is_sessionless(call):
            self._sessions[key] = call.session

    def forget(self, owner: str) -> None:
        self._sessions.pop(owner, None)

    async def tell_tools_changed(self) -> None:
        """Programs were reloaded: their tools, prompts and resources changed."""
        for send in ("send_tool_list_changed", "send_prompt_list_changed", "send_resource_list_changed"):
            await self._tell(send)

    async def tell_resources_changed(self) -> None:
        await self._tell("send_resource_list_changed")

    async def _tell(self, send: str) -> None:
        for owner, session in list(self._sessions.items()):
            try:
                await getattr(session, send)()
            except Exception:  # the client has gone
                self._sessions.pop(owner, None)
