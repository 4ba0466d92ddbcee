"""JSON-RPC to llmproc-mcp as it goes over the wire, for what the `mcp` SDK client has no API
for (2025-11-25 tasks: a `tools/call` answered with a task, `tasks/*`): over stdio (lines on
a subprocess) and over Streamable HTTP (a session, JSON or SSE answers). Server requests that
arrive meanwhile (a task's sampling request) go to `on_request`; notifications are kept."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2

from helpers import server_environment

LEGACY = "2025-11-25"
OnRequest = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class RawError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code, self.message, self.data = error.get("code"), error.get("message", ""), error.get("data")


async def _no_requests(method: str, params: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError(f"unexpected server request {method}")


class RawStdio:
    """`llmproc-mcp` over stdio, initialized in the 2025-11-25 era."""

    def __init__(self, *command: str, on_request: OnRequest = _no_requests, cwd: str | None = None) -> None:
        self.command, self.on_request, self.cwd = command, on_request, cwd
        self.notifications: list[dict[str, Any]] = []
        self.noticed = asyncio.Event()
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._answering: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawStdio:
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **server_environment()}, cwd=self.cwd, limit=16 * 1024 * 1024,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        self.initialized = await self.request(
            "initialize",
            {
                "protocolVersion": LEGACY,
                "capabilities": {"sampling": {}},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        )
        await self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._reader.cancel()
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 60)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def kill(self) -> None:
        self.process.kill()

    async def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        number = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = answer
        await self._write({"jsonrpc": "2.0", "id": number, "method": method, "params": params or {}})
        reply = await answer
        if "error" in reply:
            raise RawError(reply["error"])
        result: dict[str, Any] = reply["result"]
        return result

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            if "method" in message and "id" in message:
                answering = asyncio.create_task(self._answer(message))
                self._answering.add(answering)
                answering.add_done_callback(self._answering.discard)
            elif "method" in message:
                self.notifications.append(message)
                self.noticed.set()
            elif message.get("id") in self._waiting:
                self._waiting.pop(message["id"]).set_result(message)
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(ConnectionError("the server closed its output"))

    async def _answer(self, message: dict[str, Any]) -> None:
        try:
            result = await self.on_request(message["method"], message.get("params") or {})
            await self._write({"jsonrpc": "2.0", "id": message["id"], "result": result})
        except Exception as err:
            await self._write(
                {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32603, "message": str(err)}}
            )

    async def noticed_where(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first notification that meets `condition`, waiting for it if need be."""
        while True:
            for notification in self.notifications:
                if condition(notification):
                    return notification
            self.noticed.clear()
            await self.noticed.wait()


class RawHttp:
    """A 2025-11-25 Streamable HTTP session: each request a POST, answered in JSON or SSE."""

    def __init__(self, url: str, *, token: str | None = None, on_request: OnRequest = _no_requests) -> None:
        self.url, self.on_request = url, on_request
        self.headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        self._ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []

    async def __aenter__(self) -> RawHttp:
        self.http = httpx2.AsyncClient(timeout=httpx2.Timeout(300, connect=30))
        self.initialized = await self.request(
            "initialize",
            {
                "protocolVersion": LEGACY,
                "capabilities": {"sampling": {}},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        )
        self.headers["mcp-protocol-version"] = LEGACY
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if "mcp-session-id" in self.headers:
            await self.http.delete(self.url, headers=self.headers)
        await self.http.aclose()

    async def _post(self, message: dict[str, Any]) -> httpx2.Response:
        return await self.http.post(self.url, headers=self.headers, content=json.dumps(message))

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        number = next(self._ids)
        message = {"jsonrpc": "2.0", "id": number, "method": method, "params": params or {}}
        async with self.http.stream(
            "POST", self.url, headers=self.headers, content=json.dumps(message)
        ) as response:
            if "mcp-session-id" in response.headers:
                self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
            if response.status_code >= 400:
                body = await response.aread()
                raise RawError({"code": response.status_code, "message": body.decode(errors="replace")})
            if response.headers.get("content-type", "").startswith("application/json"):
                return _result(json.loads(await response.aread()))
            async for reply in _events(response):
                if "method" in reply and "id" in reply:
                    answer = await self.on_request(reply["method"], reply.get("params") or {})
                    await self._post({"jsonrpc": "2.0", "id": reply["id"], "result": answer})
                elif "method" in reply:
                    self.notifications.append(reply)
                elif reply.get("id") == number:
                    return _result(reply)
        raise ConnectionError(f"{method}: the stream ended without an answer")


async def _events(response: httpx2.Response) -> Any:
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield json.loads("\n".join(data))
            data = []


def _result(reply: dict[str, Any]) -> dict[str, Any]:
    if "error" in reply:
        raise RawError(reply["error"])
    result: dict[str, Any] = reply["result"]
    return result
