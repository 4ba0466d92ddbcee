"""A 2025-era session's requests reach the process that holds the session.

A Streamable HTTP session of the 2025 protocol lives in one process's memory, but the kernel
hands each new connection to any worker (SO_REUSEPORT), and a client may open several (a
GET stream beside its POSTs, or a new one after a keep-alive timeout). So each worker names
the sessions it creates `w<index>.<id>`, and a request for another worker's session is passed
on to that worker over its own Unix socket, streamed both ways. 2026-07-28 requests carry no
session and are served where they land, except the retried call of a sampling round
(`requestState` `w<index>.…`) and requests about a task (`taskId` `w<index>.…`): the run
waiting for an answer, or the task, is in one worker's memory too.
Without --workers nothing of this is in the way.

Across replicas the load balancer does the routing: `--replica-name NAME` names the sessions a
replica creates `NAME.<id>` (`SessionNames`), so a balancer can send each session to its replica
by its Mcp-Session-Id (the README's nginx `map`); plain hashing can not, since a session's first
request has no id and lands anywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from typing import Any

import anyio

HEADER = b"mcp-session-id"
WORKERS_DIR = "LLMPROC_WORKERS_DIR"
"""Where the workers' Unix sockets are (a private directory the supervisor makes)."""

_NAMED = re.compile(rb"w(\d{1,4})\.(.+)")
_ROUND = re.compile(r"w(\d{1,4})\..+")
_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te", b"trailer"}

log = logging.getLogger("llmproc.mcp_server")


def socket_path(directory: str, index: int) -> str:
    return os.path.join(directory, f"worker-{index}.sock")


def _session(scope: Any) -> bytes | None:
    return next((value for name, value in scope.get("headers") or [] if name == HEADER), None)


def _with_session(scope: Any, value: bytes) -> Any:
    return {**scope, "headers": [(n, value if n == HEADER else v) for n, v in scope.get("headers") or []]}


def _naming(send: Any, prefix: bytes) -> Any:
    """`send`, with `prefix` put before the session id of a response that names one."""

    async def naming(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (n, prefix + v if n == HEADER and not v.startswith(prefix) else v)
                for n, v in message.get("headers", [])
            ]
            message = {**message, "headers": headers}
        await send(message)

    return naming


class SessionNames:
    """ASGI: the sessions this server creates are `<prefix><id>` to clients (--replica-name), and
    the prefix is taken off again on the way in; an id without it is not this server's."""

    def __init__(self, app: Any, name: str) -> None:
        self.app, self.prefix = app, f"{name}.".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _session(scope)
        if given is not None and given.startswith(self.prefix):
            scope = _with_session(scope, given[len(self.prefix) :])
        await self.app(scope, receive, _naming(send, self.prefix))


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
        given = _session(scope)
        named = _NAMED.fullmatch(given) if given is not None else None
        if named is None and scope.get("method") == "POST":  # a round's answer names its worker
            body, receive = await _buffered(receive)
            worker = _round_worker(body)
            if worker is not None and worker != self.index:
                await self._forward(worker, scope, receive, send)
                return
        if named is not None and int(named.group(1)) != self.index:
            await self._forward(int(named.group(1)), scope, receive, send)
            return
        if named is not None:  # this worker's: the SDK knows it by its own id
            scope = _with_session(scope, named.group(2))
        await self.app(scope, receive, _naming(send, self.prefix))

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


async def _buffered(receive: Any) -> tuple[bytes, Any]:
    """The request's body, and a `receive` that hands it on again (request bodies are small)."""
    body, more, ended = b"", True, False
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            ended, more = True, False
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
    replayed = False

    async def again() -> dict[str, Any]:
        nonlocal replayed
        if not replayed and not ended:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive() if not ended else {"type": "http.disconnect"}

    return body, again


def _round_worker(body: bytes) -> int | None:
    """The worker a request belongs to by what it names: a tools/call answering a sampling round
    (its requestState), or a tasks/* request (its taskId: the task runs in that worker)."""
    if b'"requestState"' not in body and b'"taskId"' not in body:
        return None
    try:
        request = json.loads(body)
        params = request.get("params", {})
        state = params.get("requestState")
        if state is None and str(request.get("method", "")).startswith("tasks/"):
            state = params.get("taskId")
    except (ValueError, AttributeError):
        return None
    named = _ROUND.fullmatch(state) if isinstance(state, str) else None
    return int(named.group(1)) if named else None


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
