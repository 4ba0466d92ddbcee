"""Noticing that an HTTP client's session ended, so the server can let go of its processes.

A Streamable HTTP session ends with the client's DELETE; an SSE connection ends when its
event stream closes. Neither SDK transport tells the application, so this thin ASGI layer
watches for those two moments and reports the owner (as `caller_of` names it) that is gone.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

OnEnd = Callable[[str], Awaitable[None]]

_SSE_SESSION = re.compile(rb"session_id=([0-9a-fA-F-]+)")


class SessionEnds:
    def __init__(self, app: Any, on_end: OnEnd) -> None:
        self.app = app
        self.on_end = on_end

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method")
        if method == "DELETE":
            await self._delete(scope, receive, send)
        elif method == "GET" and scope.get("path", "").endswith("/sse"):
            await self._sse_stream(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _delete(self, scope: Any, receive: Any, send: Any) -> None:
        session = dict(scope.get("headers") or []).get(b"mcp-session-id")
        status = 0

        async def watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if session and 200 <= status < 300:
            await self._ended(f"http:{session.decode('latin-1')}")

    async def _sse_stream(self, scope: Any, receive: Any, send: Any) -> None:
        session: str | None = None

        async def watch(message: dict[str, Any]) -> None:
            nonlocal session
            if session is None and message["type"] == "http.response.body":
                found = _SSE_SESSION.search(message.get("body", b""))
                if found:
                    session = found.group(1).decode().replace("-", "")
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if session is not None:
                await self._ended(f"sse:{session}")

    async def _ended(self, owner: str) -> None:
        with anyio.CancelScope(shield=True):  # also when the stream ended by cancellation
            await self.on_end(owner)
