"""MCP servers as the userspace tools of processes (client side, `mcp` v2 SDK).

A connection is owned by one background task that holds the SDK client's context open,
so any process's task can call through it and the last one to leave can close it
(anyio contexts must exit in the task that entered them). Connections start on first
use, are shared by every process on the event loop with the same server definition,
and stop when their last user releases them. A server that crashes or hangs gives the
model an error result and is started again on its next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from ..composition import DEPTH_HEADER, DEPTH_VARIABLE, composition_depth
from ..errors import McpServerError
from ..messages import ImageBlock, TextBlock
from .base import ToolOutcome, ToolSpec
from .mcp_config import McpServerSpec, ToolChoice, access_from_annotations

if TYPE_CHECKING:
    import mcp_types
    from mcp import Client

log = logging.getLogger("llmproc.mcp")

START_TIMEOUT = 60.0
"""Seconds a server may take from launch to answering the handshake."""
_STOP_TIMEOUT = 5.0
_NAME_LIMIT = 64  # the strictest provider limit on tool names


class _StderrTail:
    """The last lines a stdio server wrote to stderr, read by a thread from a pipe.

    They go to the `llmproc.mcp` logger and into the error message when the server dies.
    """

    def __init__(self, server: str) -> None:
        read_fd, write_fd = os.pipe()
        self.lines: deque[str] = deque(maxlen=20)
        self.writer: TextIO = os.fdopen(write_fd, "w")
        reader = os.fdopen(read_fd, "r", errors="replace")
        self._done = threading.Event()
        threading.Thread(target=self._read, args=(reader, server), daemon=True).start()

    def _read(self, reader: TextIO, server: str) -> None:
        with reader:
            for line in reader:
                line = line.rstrip()
                if line:
                    self.lines.append(line)
                    log.debug("[%s] %s", server, line)
        self._done.set()

    def close_writer(self) -> None:
        """Our copy of the pipe's write end; the server keeps its own until it exits."""
        with contextlib.suppress(OSError):
            self.writer.close()

    def text(self, wait: float = 0.0) -> str:
        if wait:
            self._done.wait(wait)
        return "\n".join(self.lines)


def _leaves(error: BaseException) -> Iterator[BaseException]:
    inner_errors = getattr(error, "exceptions", None)  # an exception group (Python 3.10: backport)
    if isinstance(inner_errors, tuple):
        for inner in inner_errors:
            yield from _leaves(inner)
    else:
        yield error


def _reason(error: BaseException) -> str:
    """One line for what went wrong, from an exception that may be a group."""
    leaves = [e for e in _leaves(error) if not isinstance(e, asyncio.CancelledError)] or [error]
    first = leaves[0]
    if isinstance(first, FileNotFoundError):
        return (
            f"command not found: {first.filename or first}; install it (its package, with pip or "
            "npm) or give the program's [mcp] server command as a full path"
        )
    if isinstance(first, PermissionError):
        return f"command can not be run: {first.filename or first}"
    text = str(first).strip() or type(first).__name__
    return f"{type(first).__name__}: {text}" if "Error" in type(first).__name__ and ":" not in text else text


class McpConnection:
    """One MCP server: started on demand, restarted after a crash, closed by its last user."""

    def __init__(self, spec: McpServerSpec, depth: int = 0) -> None:
        self.spec = spec
        self.depth = depth  # how deep the work that uses this connection is nested
        self.users = 0
        self._client: Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._tools: list[mcp_types.Tool] | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self._client is not None and self._runner is not None and not self._runner.done()

    async def client(self) -> Client:
        """The connected client, starting the server first when it is not running."""
        if self.alive:
            assert self._client is not None
            return self._client
        async with self._start_lock:
            if not self.alive:
                await self._start()
            assert self._client is not None
            return self._client

    async def _start(self) -> None:
        await self._drop()
        ready = asyncio.Event()
        failure: list[str] = []
        self._stop = asyncio.Event()
        self.starts += 1
        self._runner = asyncio.create_task(self._serve(ready, failure), name=f"mcp:{self.spec.name}")
        try:
            await asyncio.wait_for(ready.wait(), START_TIMEOUT)
        except asyncio.TimeoutError:
            await self._drop()
            failure.append(f"no answer to the MCP handshake within {START_TIMEOUT:g}s")
        if failure or not self.alive:
            raise McpServerError(
                f"MCP server '{self.spec.name}' ({self.spec.describe()}) failed to start: "
                f"{failure[0] if failure else 'it stopped at once'}"
            )
        log.info("MCP server '%s' started (%s)", self.spec.name, self.spec.describe())

    async def _serve(self, ready: asyncio.Event, failure: list[str]) -> None:
        """The task that owns the client context from connect to close."""
        from mcp import Client

        stderr = _StderrTail(self.spec.name) if self.spec.command else None
        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = await self._transport(stack, stderr)
                client = Client(transport, client_info=_client_info(), cache=None)
                try:
                    await stack.enter_async_context(client)
                finally:
                    if stderr:
                        stderr.close_writer()
                self._client = client
                ready.set()
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # the SDK reports transport failures as exception groups
            reason = _reason(err)
            if not ready.is_set():
                tail = stderr.text(wait=1.0) if stderr else ""
                failure.append(
                    f"{reason}\n  its stderr:\n    " + tail.replace("\n", "\n    ") if tail else reason
                )
            else:
                log.warning("MCP server '%s' stopped: %s", self.spec.name, reason)
        finally:
            self._client = None
            ready.set()

    async def _transport(self, stack: contextlib.AsyncExitStack, stderr: _StderrTail | None) -> Any:
        spec = self.spec
        if spec.command:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            assert stderr is not None
            env = {**dict(spec.env), DEPTH_VARIABLE: str(self.depth + 1)}
            params = StdioServerParameters(command=spec.command, args=list(spec.args), env=env, cwd=spec.cwd)
            return stdio_client(params, errlog=stderr.writer)
        assert spec.url is not None
        headers = {**dict(spec.headers), DEPTH_HEADER: str(self.depth + 1)}
        if spec.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(spec.url, headers=headers)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        # the MCP transports' own defaults: 30 s to connect and write, 300 s to read a stream
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
        )
        return streamable_http_client(spec.url, http_client=http)

    async def tools(self) -> list[mcp_types.Tool]:
        """Every tool the server offers (all pages), listed once per connection object."""
        if self._tools is None:
            client = await self.client()
            tools, cursor = [], None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            self._tools = tools
        return self._tools

    async def _drop(self) -> None:
        """Stop the running server, if any (the next use starts it again)."""
        runner, self._runner = self._runner, None
        if runner is None or runner.done():
            return
        self._stop.set()
        done, _ = await asyncio.wait({runner}, timeout=_STOP_TIMEOUT)
        if not done:
            runner.cancel()
            with contextlib.suppress(BaseException):
                await runner

    async def restart_later(self) -> None:
        """Drop a crashed or hung server; its next use starts a fresh one."""
        async with self._start_lock:
            await self._drop()

    async def close(self) -> None:
        await self._drop()


def _client_info() -> Any:
    import mcp_types

    from ..version import __version__

    return mcp_types.Implementation(name="llmproc", version=__version__)


class McpHub:
    """The kernel's MCP connections: one per (event loop, server definition), counted by users."""

    def __init__(self) -> None:
        self._connections: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[Any, ...], McpConnection]
        ] = weakref.WeakKeyDictionary()

    def acquire(self, spec: McpServerSpec) -> McpConnection:
        """The shared connection for `spec` at the current composition depth (nested work at
        another depth gets its own, so the depth it hands on is always right)."""
        connections = self._connections.setdefault(asyncio.get_running_loop(), {})
        depth = composition_depth()
        key = (*spec.key, depth)
        connection = connections.get(key)
        if connection is None:
            connection = connections[key] = McpConnection(spec, depth)
        connection.users += 1
        return connection

    async def release(self, connection: McpConnection) -> None:
        connection.users -= 1
        if connection.users > 0:
            return
        connections = self._connections.get(asyncio.get_running_loop(), {})
        key = (*connection.spec.key, connection.depth)
        if connections.get(key) is connection:
            del connections[key]
        await connection.close()

    def live(self) -> list[McpConnection]:
        """Connections on the running loop (for diagnostics and tests)."""
        return list(self._connections.get(asyncio.get_running_loop(), {}).values())


def tool_name(server: str, tool: str) -> str:
    """`server__tool`, limited to the characters and length every provider accepts."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", f"{server}__{tool}")
    if len(name) > _NAME_LIMIT:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: _NAME_LIMIT - 9]}_{digest}"
    return name


class McpToolset:
    """The chosen tools of one server, as one process sees them (names, descriptions, access)."""

    def __init__(self, connection: McpConnection, choice: ToolChoice, default_timeout: float) -> None:
        self.connection = connection
        self.server = connection.spec.name
        self.timeout = connection.spec.timeout or default_timeout
        self._choice = choice
        self._specs: list[ToolSpec] = []
        self._real_names: dict[str, str] = {}

    async def load(self) -> McpToolset:
        """List the server's tools (starting it) and keep the chosen ones; safe to call again
        after a failure (a process retries on its next run)."""
        self._specs, self._real_names = [], {}
        try:
            offered = {t.name: t for t in await self.connection.tools()}
        except McpServerError:
            raise
        except Exception as err:
            raise McpServerError(
                f"MCP server '{self.server}' ({self.connection.spec.describe()}) could not list its tools: "
                f"{_reason(err)}"
            ) from None
        if self._choice.all:
            chosen = list(offered)
        else:
            chosen = list(self._choice.tools)
            missing = [name for name in chosen if name not in offered]
            if missing:
                raise McpServerError(
                    f"MCP server '{self.server}' has no tool named {', '.join(repr(m) for m in missing)}; "
                    f"it offers: {', '.join(offered) or 'no tools'}"
                )
        for real in chosen:
            tool = offered[real]
            override = self._choice.override(real)
            name = (override.alias if override else None) or tool_name(self.server, real)
            schema = dict(tool.input_schema or {})
            schema.setdefault("type", "object")
            schema.setdefault("properties", {})
            self._real_names[name] = real
            self._specs.append(
                ToolSpec(
                    name=name,
                    description=(override.description if override else None)
                    or tool.description
                    or f"Tool '{real}' of MCP server '{self.server}'.",
                    parameters=schema,
                    access=(override.access if override else None)
                    or access_from_annotations(tool.annotations),
                    # the router's deadline comes after ours, so a hung server is ours to restart
                    timeout=self.timeout + START_TIMEOUT + _STOP_TIMEOUT,
                )
            )
        return self

    def specs(self) -> list[ToolSpec]:
        return self._specs

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED
        from pydantic import ValidationError

        real = self._real_names[name]
        where = f"MCP server '{self.server}'"
        try:
            client = await self.connection.client()  # a (re)start has its own time limit
            with anyio.fail_after(self.timeout):
                result = await client.call_tool(real, arguments)
        except TimeoutError:
            await self.connection.restart_later()
            return ToolOutcome.text(
                f"{where} did not answer '{real}' within {self.timeout:g}s; "
                "it was stopped and will be started again on next use",
                is_error=True,
            )
        except McpServerError as err:
            return ToolOutcome.text(str(err), is_error=True)
        except MCPError as err:
            if err.code == CONNECTION_CLOSED or not self.connection.alive:
                await self.connection.restart_later()
                return ToolOutcome.text(
                    f"{where} closed the connection during '{real}' (it may have crashed); "
                    "it will be started again on next use",
                    is_error=True,
                )
            return ToolOutcome.text(f"{where} refused '{real}': {err.message}", is_error=True)
        except ValidationError as err:  # the server broke the protocol; it may do so again
            await self.connection.restart_later()
            problem = err.errors()[0]
            field = ".".join(str(part) for part in problem["loc"]) or "result"
            return ToolOutcome.text(
                f"{where} sent a reply to '{real}' that is not a valid tool result "
                f"({field}: {problem['msg']}); it will be started again on next use",
                is_error=True,
            )
        except Exception as err:
            await self.connection.restart_later()
            return ToolOutcome.text(f"{where} failed during '{real}': {_reason(err)}", is_error=True)
        return outcome_from_result(result)


def outcome_from_result(result: mcp_types.CallToolResult) -> ToolOutcome:
    """An MCP tool result as content the model can see: text, images, resources as text."""
    import mcp_types as types

    blocks: list[TextBlock | ImageBlock] = []
    for item in result.content:
        if isinstance(item, types.TextContent):
            blocks.append(TextBlock(item.text))
        elif isinstance(item, types.ImageContent):
            blocks.append(ImageBlock(item.data, item.mime_type))
        elif isinstance(item, types.AudioContent):
            blocks.append(TextBlock(f"[audio of type {item.mime_type} left out: models here take no audio]"))
        elif isinstance(item, types.EmbeddedResource):
            resource = item.resource
            mime = resource.mime_type or ""
            if isinstance(resource, types.TextResourceContents):
                blocks.append(TextBlock(f'<resource uri="{resource.uri}">\n{resource.text}\n</resource>'))
            elif mime.startswith("image/"):
                blocks.append(ImageBlock(resource.blob, mime))
            else:
                blocks.append(
                    TextBlock(f"[binary resource {resource.uri} ({mime or 'unknown type'}) left out]")
                )
        elif isinstance(item, types.ResourceLink):
            about = f": {item.description}" if item.description else ""
            blocks.append(TextBlock(f"[resource link {item.uri} ({item.name}){about}]"))
    if not blocks and result.structured_content is not None:
        blocks.append(TextBlock(json.dumps(result.structured_content, ensure_ascii=False)))
    return ToolOutcome(tuple(blocks), bool(result.is_error))
