"""Under --workers, a 2025-era session's requests reach the worker that holds the session.

A Streamable HTTP session of the 2025 protocol lives in one process's memory, but the kernel
hands each new connection to any worker (SO_REUSEPORT), and a client may open several (a
GET stream beside its POSTs, or a new one after a keep-alive timeout). So each worker names
the sessions it creates `w<index>.<id>`, and a request for another worker's session is passed
on to that worker over its own Unix socket, streamed both ways. 2026-07-28 requests carry no
session and are served where they land. Without --workers nothing of this is in the way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Any

import anyio

HEADER = b"mcp-session-id"
WORKERS_DIR = "LLMPROC_WORKERS_DIR"
"""Where the workers' Unix sockets are (a private directory the supervisor makes)."""

_NAMED = re.compile(rb"w(\d{1,4})\.(.+)")
_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te", b"trailer"}

log = logging.getLogger("llmproc.mcp_server")


def socket_path(directory: str, index: int) -> str:
    return os.path.join(directory, f"worker-{index}.sock")


class SessionRouter:
    """ASGI: names this worker's new sessions, strips the name from its own, forwards the rest."""

    def __init__(self, app: Any, index: int, directory: str) -> None:
        self.app, self.index, self.directory = app, index, directory
        self.prefix = f"w{index}.".encode()
        self._clients: dict[int, Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        given = next((value for name, value in headers if name == HEADER), None)
        named = _NAMED.fullmatch(given) if given is not None else None
        if named is not None and int(named.group(1)) != self.index:
            await self._forward(int(named.group(1)), scope, receive, send)
            return
        if named is not None:  # this worker's: the SDK knows it by its own id
            own = [(n, named.group(2) if n == HEADER else v) for n, v in headers]
            scope = {**scope, "headers": own}

        async def naming(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [
                    (n, self.prefix + v if n == HEADER else v) for n, v in message.get("headers", [])
                ]}  # fmt: skip
            await send(message)

        await self.app(scope, receive, naming)

    def _client(self, index: int) -> Any:
        client = self._clients.get(index)
        if client is None:
            import httpx2

            transport = httpx2.AsyncHTTPTransport(uds=socket_path(self.directory, index))
            client = httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(None, connect=30))
            self._clients[index] = client
        return client

    async def _forward(self, index: int, scope: Any, receive: Any, send: Any) -> None:
        """The request, as it came (headers, body), to worker `index`; its answer streamed back.
        A client that hangs up ends the forwarded request too."""
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(n, v) for n, v in scope.get("headers") or [] if n.lower() not in _HOP_BY_HOP]
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url = "http://worker" + path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        async with anyio.create_task_group() as tasks:

            async def until_hung_up() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tasks.cancel_scope.cancel()

            tasks.start_soon(until_hung_up)
            try:
                await self._relay(index, scope["method"], url, headers, body, send)
            finally:
                tasks.cancel_scope.cancel()

    async def _relay(
        self, index: int, method: str, url: str, headers: list[Any], body: bytes, send: Any
    ) -> None:
        import httpx2

        try:
            request = self._client(index).build_request(method, url, headers=headers, content=body)
            response = await self._client(index).send(request, stream=True)
        except httpx2.HTTPError as err:  # that worker is gone (restarting): its sessions with it
            log.info("session of worker %d not reachable: %s", index, err)
            await _answer(send, 404, b'{"error": "Session not found"}')
            return
        try:
            kept = [(n, v) for n, v in response.headers.raw if n.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": kept})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await response.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
