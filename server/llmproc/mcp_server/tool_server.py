"""The MCP wire of llmproc-mcp: the SDK's low-level `Server`, serving tools defined at run time.

Run tools come and go while clients are connected (programs are reloaded when files change)
and a thousand of them share one argument schema, so tools are `ToolDef`s kept here, not
functions whose signatures MCPServer would turn into schemas one by one: the `Tool` a client
lists, the pydantic model its arguments are checked against, and the handler that does the
work. Everything is the SDK's public API: handlers passed to the `Server`, a subclass that
announces tools/list_changed in the handshake, and the SDK's transports.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.sse import SseServerTransport
from mcp.server.subscriptions import ListenHandler, SubscriptionBus
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    InputRequiredResult,
    ListToolsResult,
    PaginatedRequestParams,
    ServerCapabilities,
    ServerTasksCapability,
    TextContent,
    Tool,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from ..errors import LLMProcError
from .stdio import StdinLines, claimed_stdin

log = logging.getLogger("llmproc.mcp_server")

TOOLS_PAGE = 100
"""Tools in one tools/list page (about 130 KB of run tools)."""

Answer = CallToolResult | InputRequiredResult


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tools/call as a handler sees it: the SDK's request context and the call's own fields."""

    ctx: ServerRequestContext[Any, Any]
    name: str
    request_state: str | None = None
    """Echoed from an earlier InputRequiredResult (2026-07-28): this call answers that round."""
    input_responses: dict[str, Any] | None = None

    @property
    def session(self) -> Any:
        return self.ctx.session

    @property
    def request_id(self) -> Any:
        return self.ctx.request_id

    @property
    def protocol_version(self) -> str:
        return self.ctx.protocol_version

    @property
    def http_request(self) -> Any:
        """The Starlette request on HTTP transports, else None."""
        return self.ctx.request

    @property
    def progress_token(self) -> Any:
        """The token the client asked progress for, or None (it asked none)."""
        meta = self.ctx.meta
        return meta.get("progress_token") if meta else None

    async def report_progress(self, progress: float, total: float | None, message: str) -> None:
        await self.ctx.session.report_progress(progress, total, message)


Handler = Callable[[ToolCall, Any], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class ToolDef:
    tool: Tool
    arguments: type[BaseModel]
    handler: Handler


class ToolServer(Server[Any]):
    """A low-level MCP server over a mutable set of `ToolDef`s, listed a page at a time.

    Tools, and the resources and prompts given (and subscriptions/listen, how 2026-07-28
    clients hear what changed) are served: nothing empty that hosts would warn about.
    """

    def __init__(
        self,
        name: str,
        *,
        version: str,
        instructions: str,
        bus: SubscriptionBus,
        resources: Any = None,
        prompts: Any = None,
    ) -> None:
        """`resources`, `prompts`: their handlers (resources.py, prompts.py), or None to serve
        tools only."""
        served: dict[str, Any] = {}
        if prompts is not None:
            served |= {
                "on_list_prompts": prompts.list_prompts,
                "on_get_prompt": prompts.get_prompt,
                "on_completion": prompts.complete,
            }
        if resources is not None:
            served |= {
                "on_list_resources": resources.list_resources,
                "on_list_resource_templates": resources.list_templates,
                "on_read_resource": resources.read_resource,
                "on_subscribe_resource": resources.subscribe,
                "on_unsubscribe_resource": resources.unsubscribe,
            }
        super().__init__(
            name,
            version=version,
            instructions=instructions,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(bus),
            **served,
        )
        self._definitions: dict[str, ToolDef] = {}
        self.tasks: tuple[ServerTasksCapability, str] | None = None
        """Tasks served (task_wire.py): the 2025-11-25 capability, and the 2026-07-28 extension."""

    def publish(self, definitions: Iterable[ToolDef]) -> None:
        """Serve exactly these tools from now on, in this order."""
        self._definitions = {d.tool.name: d for d in definitions}

    @property
    def tool_names(self) -> list[str]:
        return list(self._definitions)

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        """The handshake says this server sends the tools, resources and prompts list_changed:
        hosts listen for the notifications only from servers that declare them, and programs
        are reloaded and processes come and go."""
        options = notification_options or NotificationOptions(
            tools_changed=True, resources_changed=True, prompts_changed=True
        )
        return super().create_initialization_options(options, *args, **kwargs)

    def get_capabilities(
        self, *args: Any, protocol_version: str | None = None, **kwargs: Any
    ) -> ServerCapabilities:
        """With tasks: the 2025-11-25 `tasks` capability in a handshake, the extension under
        2026-07-28 (and never the legacy capability there)."""
        capabilities = super().get_capabilities(*args, protocol_version=protocol_version, **kwargs)
        if self.tasks is None:
            return capabilities
        legacy, extension = self.tasks
        if protocol_version in MODERN_PROTOCOL_VERSIONS:
            extensions = {**(capabilities.extensions or {}), extension: {}}
            return capabilities.model_copy(update={"extensions": extensions})
        return capabilities.model_copy(update={"tasks": legacy})

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        """tools/list a page at a time: with a thousand programs the whole list is 1.7 MB, past
        the 1 MB event limit of the SDK's own client. The cursor names the last tool of the
        previous page, so a page is never skipped or repeated while others stay put."""
        names = list(self._definitions)
        start = 0
        if params is not None and params.cursor:
            try:
                start = names.index(base64.urlsafe_b64decode(params.cursor.encode()).decode()) + 1
            except (ValueError, UnicodeDecodeError, binascii.Error):
                raise MCPError(
                    INVALID_PARAMS, "invalid or expired cursor; list the tools again from the start"
                ) from None
        page = names[start : start + TOOLS_PAGE]
        more = start + TOOLS_PAGE < len(names)
        cursor = base64.urlsafe_b64encode(page[-1].encode()).decode() if more else None
        return ListToolsResult(tools=[self._definitions[n].tool for n in page], next_cursor=cursor)

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams) -> Answer:
        """Check the arguments, run the handler; llmproc's errors become error results with
        their message, argument errors say which argument and why (no pydantic boilerplate)."""
        name = params.name
        definition = self._definitions.get(name)
        if definition is None:
            return error_result(f"Unknown tool: {name}")
        try:
            arguments = definition.arguments.model_validate(params.arguments or {})
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in err.errors()
            )
            return error_result(f"invalid arguments for {name}: {problems}")
        call = ToolCall(ctx, name, params.request_state, params.input_responses)
        try:
            return await definition.handler(call, arguments)
        except MCPError:
            raise
        except LLMProcError as err:
            log.info("tool %s failed: %s", name, err)
            return error_result(f"Error executing tool {name}: {err}")
        except Exception as err:
            log.exception("tool %s raised an unexpected exception", name)
            return error_result(f"Error executing tool {name}: {err}")

    # -- transports ----------------------------------------------------------------------------

    async def run_stdio_async(self) -> None:
        """Serve over stdio with an input that stopping never waits for (see stdio.py)."""
        from mcp.server.stdio import stdio_server

        with claimed_stdin() as wire:
            async with stdio_server(stdin=StdinLines(wire)) as (read_stream, write_stream):  # type: ignore[arg-type]
                await self.run(read_stream, write_stream, self.create_initialization_options())

    def sse_app(self, *, transport_security: TransportSecuritySettings) -> Starlette:
        """The SSE transport (2024-era clients): GET /sse opens a stream, POST /messages/ talks."""
        sse = SseServerTransport("/messages/", security_settings=transport_security)
        server = self

        class Stream:
            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                async with sse.connect_sse(scope, receive, send) as (read_stream, write_stream):
                    await server.run(read_stream, write_stream, server.create_initialization_options())

        routes = [
            Route("/sse", endpoint=Stream(), methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),
        ]
        return Starlette(routes=routes)


def text_result(text: str, structured: dict[str, Any] | None = None) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def model_result(output: BaseModel) -> CallToolResult:
    """A structured result and the same as indented JSON text, as MCPServer returns a model."""
    structured = output.model_dump(mode="json")
    return text_result(json.dumps(structured, indent=2, ensure_ascii=False), structured)


def error_result(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
