"""The MCP layer: each published program becomes `run_<name>`, plus spawn, reset, fork and
list_processes. Everything here translates between MCP and the runtime; the work is done
by `LLMProcess`, the catalog and the process table. (MCPServer reads the tools' type hints,
so the names they use are imported at module level.)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import difflib
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import anyio
from mcp.server import MCPServer, NotificationOptions
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError as McpToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ToolsListChanged
from mcp_types import (
    INVALID_PARAMS,
    CallToolResult,
    CreateMessageRequest,
    InputRequiredResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel, Field, ValidationError

from ..errors import LLMProcError
from ..events import RunEvent, ToolCallStarted, TurnFinished, Watch
from ..process import LLMProcess
from ..providers.mcp_sampling import SamplingHost, sampling_host
from ..result import RunResult
from ..store import Persisted, ProcessStore
from ..tools.mcp import DEPTH_HEADER, composition_depth, request_depth
from ..version import __version__
from . import client_log
from .catalog import Catalog, CatalogError, PublishedProgram
from .handles import Handle, Owner, ProcessTable
from .stdio import StdinLines, claimed_stdin

log = logging.getLogger("llmproc.mcp_server")

Transport = Literal["stdio", "sse", "streamable-http"]

INSTRUCTIONS = (
    "Each run_<program> tool sends a message to an LLM process running that program and returns "
    "its reply. Processes keep their conversation: call again to continue it, or pass the "
    "process_id from an earlier result. spawn starts a separate process, fork copies one, reset "
    "clears one, list_processes shows yours."
)


class RunOutput(BaseModel):
    """What a run returns besides the reply text."""

    process_id: str = Field(description="Pass it back as process_id to continue this conversation.")
    program: str
    text: str = Field(description="The reply.")
    usage: dict[str, int] = Field(description="Tokens of this run: input, output, cache and reasoning.")
    cost_usd: float | None = Field(description="Cost of this run in USD; null when the price is unknown.")
    tool_calls: list[dict[str, Any]] = Field(description="Tools the process called during the run.")


class ProcessInfo(BaseModel):
    process_id: str
    program: str
    turns: int
    messages: int
    cost_usd: float | None
    created: str
    last_activity: str
    parent_id: str | None


class ProcessList(BaseModel):
    processes: list[ProcessInfo]
    programs: list[str] = Field(description="Programs this server publishes.")
    unavailable_programs: dict[str, str] = Field(description="Program files left out, with the reason.")


class ForkOutput(BaseModel):
    process_id: str
    program: str
    parent_id: str


@contextlib.contextmanager
def _as_tool_errors() -> Iterator[None]:
    """llmproc's errors become MCP tool errors: the client sees the message, not a traceback."""
    try:
        yield
    except LLMProcError as err:
        raise McpToolError(str(err)) from None


class _Server(MCPServer):
    """MCPServer with argument errors a person can read (no pydantic boilerplate or links), and
    that says in the handshake it sends tools/list_changed (programs are reloaded when files
    change): hosts listen for the notification only from servers that declare it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lowlevel = self._lowlevel_server
        handshake_options = lowlevel.create_initialization_options

        def announce_tool_changes(
            notification_options: NotificationOptions | None = None, *rest: Any, **named: Any
        ) -> Any:
            options = notification_options or NotificationOptions(tools_changed=True)
            return handshake_options(options, *rest, **named)

        lowlevel.create_initialization_options = announce_tool_changes  # type: ignore[method-assign]
        # capabilities follow the methods served: drop MCPServer's empty prompt and resource
        # handlers, which hosts (Gemini CLI) otherwise warn about, finding nothing behind them
        for method in _UNSERVED:
            lowlevel._request_handlers.pop(method, None)
        lowlevel.add_request_handler("tools/list", PaginatedRequestParams, self._list_tools_page)

    async def _list_tools_page(self, ctx: Any, params: PaginatedRequestParams | None) -> ListToolsResult:
        """tools/list a page at a time: with a thousand programs the whole list is 1.7 MB, past
        the 1 MB event limit of the SDK's own client. The cursor names the last tool of the
        previous page, so a page is never skipped or repeated while others stay put."""
        tools = await self.list_tools()
        start = 0
        if params is not None and params.cursor:
            names = [tool.name for tool in tools]
            try:
                start = names.index(base64.urlsafe_b64decode(params.cursor.encode()).decode()) + 1
            except (ValueError, UnicodeDecodeError, binascii.Error):
                raise MCPError(
                    INVALID_PARAMS, "invalid or expired cursor; list the tools again from the start"
                ) from None
        page = tools[start : start + TOOLS_PAGE]
        more = start + TOOLS_PAGE < len(tools)
        cursor = base64.urlsafe_b64encode(page[-1].name.encode()).decode() if more else None
        return ListToolsResult(tools=page, next_cursor=cursor)

    async def run_stdio_async(self) -> None:
        """Serve over stdio with an input that stopping never waits for (see stdio.py)."""
        from mcp.server.stdio import stdio_server

        with claimed_stdin() as wire:
            async with stdio_server(stdin=StdinLines(wire)) as (read_stream, write_stream):  # type: ignore[arg-type]
                lowlevel = self._lowlevel_server
                await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except McpToolError as err:
            if not isinstance(err.__cause__, ValidationError):
                raise
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in err.__cause__.errors()
            )
            raise McpToolError(f"invalid arguments for {name}: {problems}") from None


_UNSERVED = (
    "prompts/list", "prompts/get", "resources/list", "resources/templates/list", "resources/read",
    "resources/subscribe", "resources/unsubscribe",
)  # fmt: skip
"""Methods MCPServer answers with empty lists; this server publishes no prompts or resources."""

TOOLS_PAGE = 100
"""Tools in one tools/list page (about 130 KB of run tools)."""

_PROGRESS_EVENTS = (ToolCallStarted, TurnFinished)
"""What progress reports are made of: not text deltas, so runs make plain provider requests."""

_ROUND_TIMEOUT = 600.0
"""Seconds a run waits for a client to answer one sampling round before it fails."""

_MAX_WAITING_RUNS = 100
"""Runs waiting for sampling answers, in all: each holds a live process until answered or
timed out, so they never take more than half of --max-live-processes either."""


@dataclass(eq=False)
class _ParkedRun:
    """A run between input_required rounds: questions go out, answers come in."""

    handle: Handle
    length_before: int
    outbox: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    waiting: asyncio.Future[Any] | None = None  # the answer the last round asked for
    task: asyncio.Task[None] | None = None


def caller_of(ctx: Any, transport: Transport) -> Owner:
    """Who is calling: the connection, or a 2025-era HTTP session; None when there is neither.

    Only a session the SDK's transport knows names a caller: a 2026-07-28 request has no
    session, so an `mcp-session-id` header on one (a 2025-era session's, or made up) is the
    caller's own choice and must never pass for an identity."""
    if transport == "stdio":
        return "stdio"  # one client per server process
    request = getattr(ctx.request_context, "request", None)
    if request is None:
        return None
    if transport == "sse":  # the connection itself: its id is checked by the transport
        session = request.query_params.get("session_id")
        return f"sse:{session}" if session else None
    if is_sessionless(ctx):
        return None
    session = request.headers.get("mcp-session-id")
    return f"http:{session}" if session else None


def is_sessionless(ctx: Any) -> bool:
    """Whether the request came in the 2026-07-28 era, which has no sessions."""
    return str(ctx.protocol_version or "").startswith("2026")


class LLMProcServer:
    """Builds the `MCPServer` that publishes a catalog, and keeps the processes it serves."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        transport: Transport = "stdio",
        table: ProcessTable | None = None,
        max_depth: int = 4,
        store: ProcessStore | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.boot = secrets.token_hex(8)  # this server start, recorded with session owners
        self._restoring = asyncio.Lock()
        self.transport = transport
        self.max_depth = max_depth
        self.table = table if table is not None else ProcessTable()  # an empty table is falsy
        self._bus = InMemorySubscriptionBus()
        self._legacy_sessions: dict[str, Any] = {}  # caller -> the latest session, for list_changed
        self._last_sweep = 0.0
        self._parked: dict[str, _ParkedRun] = {}  # request_state -> a run waiting for a sampling answer
        client_log.install()
        self.mcp = self._build()

    def _build(self) -> Any:
        app = _Server("llmproc", version=__version__, instructions=INSTRUCTIONS, subscriptions=self._bus)
        self._publish_programs(app)
        app.add_tool(self._spawn_tool(), name="spawn", description=_SPAWN, annotations=_TALKS)
        app.add_tool(self._reset_tool(), name="reset", description=_RESET)
        app.add_tool(self._fork_tool(), name="fork", description=_FORK)
        app.add_tool(
            self._list_tool(),
            name="list_processes",
            description=_LIST,
            annotations=ToolAnnotations(read_only_hint=True),
        )
        return app

    def _publish_programs(self, app: Any) -> None:
        """One run_<name> tool per program. Every run tool has the same signature, so the SDK's
        schema and validation models are built once and shared: start-up stays fast with
        many programs."""
        template = None
        for published in self.catalog.programs.values():
            run = self._run_tool(published)
            if template is None:
                app.add_tool(
                    run, name=published.tool_name, description=published.description, annotations=_TALKS
                )
                template = _lean(app._tool_manager.get_tool(published.tool_name))
                app._tool_manager._tools[published.tool_name] = template
            else:
                tool = template.model_copy(
                    update={"fn": run, "name": published.tool_name, "description": published.description}
                )
                app._tool_manager._tools[published.tool_name] = tool

    async def reload(self) -> bool:
        """Load the programs directory again and publish what changed; tell clients if anything did.

        Processes already running keep the program version they started with.
        """
        try:  # off the event loop: a thousand programs take a second to load
            catalog = await asyncio.to_thread(Catalog.load, self.catalog.root)
        except CatalogError as err:
            log.error("programs not reloaded: %s", err)
            return False
        unchanged = await asyncio.to_thread(lambda: catalog.signature() == self.catalog.signature())
        if unchanged:
            self.catalog = catalog
            return False
        before = set(self.catalog.programs)
        for published in self.catalog.programs.values():
            self.mcp.remove_tool(published.tool_name)
        self.catalog = catalog
        self._publish_programs(self.mcp)
        added, removed = sorted(set(catalog.programs) - before), sorted(before - set(catalog.programs))
        log.info(
            "programs reloaded: %d published%s%s", len(catalog.programs),
            f"; added {_few(added)}" if added else "", f"; removed {_few(removed)}" if removed else "",
        )  # fmt: skip
        await self._bus.publish(ToolsListChanged())
        for caller, session in list(self._legacy_sessions.items()):
            try:
                await session.send_tool_list_changed()
            except Exception:  # the client has gone
                self._legacy_sessions.pop(caller, None)
        return True

    def _seen(self, ctx: Any, owner: Owner) -> None:
        """Remember a handshake-era client's session, which is how it hears that tools changed."""
        if owner is not None and not is_sessionless(ctx):
            self._legacy_sessions[owner] = ctx.session

    # -- tools ---------------------------------------------------------------------------------

    def _run_tool(self, published: PublishedProgram) -> Any:
        server = self

        async def run(
            message: Annotated[str, Field(description="What to say to the program.")],
            ctx: Context,
            process_id: Annotated[
                str | None, Field(description="Continue this process (from an earlier result).")
            ] = None,
        ) -> Annotated[CallToolResult, RunOutput] | InputRequiredResult:
            if ctx.request_state:  # a 2026-07-28 client answering a sampling round
                return await server._resume(ctx)
            owner = caller_of(ctx, server.transport)
            server._seen(ctx, owner)
            await server._evict_idle()
            if process_id:
                handle = await server._get(process_id, owner)
                if handle.program != published.name:
                    raise McpToolError(
                        f"process '{process_id}' runs program '{handle.program}'; call run_{handle.program}"
                    )
            else:
                handle = await server._default(owner, published.name, published.program)
            return await server._run(handle, message, ctx)

        return run

    def _spawn_tool(self) -> Any:
        server = self

        async def spawn(
            program: Annotated[
                str, Field(description="Name of a published program (run_<name> without run_).")
            ],
            ctx: Context,
            message: Annotated[str | None, Field(description="A first message to run at once.")] = None,
        ) -> Annotated[CallToolResult, RunOutput] | InputRequiredResult:
            if ctx.request_state:  # a 2026-07-28 client answering a sampling round
                return await server._resume(ctx)
            published = server._published(program)
            handle = server._create(published.name, published.program, caller_of(ctx, server.transport))
            if message is None:
                await server._persist(handle)
                return _result(handle, None, "")
            try:
                return await server._run(handle, message, ctx)
            except BaseException:  # the caller never learns this process's id: leave nothing behind
                with anyio.CancelScope(shield=True):
                    await server.table.remove(handle)
                raise

        return spawn

    def _reset_tool(self) -> Any:
        server = self

        async def reset(
            ctx: Context,
            process_id: Annotated[str | None, Field(description="The process to clear.")] = None,
            program: Annotated[
                str | None, Field(description="Clear your conversation with this program.")
            ] = None,
        ) -> str:
            owner = caller_of(ctx, server.transport)
            server._seen(ctx, owner)
            if process_id:
                handles = [await server._get(process_id, owner)]
            elif program:
                name = server._published(program).name
                handles = [h for h in server.table.owned_by(owner) if h.program == name]
            else:
                handles = server.table.owned_by(owner)
            for handle in handles:
                if handle.process.running:
                    raise McpToolError(
                        f"process '{handle.id}' is running; reset it when the run has finished"
                    )
                handle.process.reset_state()
                handle.turns = 0
                await server._persist(handle)
            return f"cleared {len(handles)} process{'es' if len(handles) != 1 else ''}"

        return reset

    def _fork_tool(self) -> Any:
        server = self

        async def fork(
            process_id: Annotated[str, Field(description="The process to copy.")], ctx: Context
        ) -> ForkOutput:
            owner = caller_of(ctx, server.transport)
            server._seen(ctx, owner)
            parent = await server._get(process_id, owner)
            published = server._published(parent.program)
            child = server._create(parent.program, published.program, owner, process=parent.process.fork())
            child.turns = parent.turns
            await server._persist(child)
            return ForkOutput(process_id=child.id, program=child.program, parent_id=parent.id)

        return fork

    def _list_tool(self) -> Any:
        server = self

        async def list_processes(ctx: Context) -> ProcessList:
            await server._evict_idle(now=True)
            owner = caller_of(ctx, server.transport)
            server._seen(ctx, owner)
            return ProcessList(
                processes=[ProcessInfo.model_validate(d) for d in await server._described(owner)],
                programs=sorted(server.catalog.programs),
                unavailable_programs=server.catalog.failures,
            )

        return list_processes

    # -- shared --------------------------------------------------------------------------------

    async def _get(self, process_id: str, owner: Owner) -> Handle:
        """The caller's process: in memory, else (with --state) restored from the database."""
        if self.store is not None and process_id not in self.table:
            async with self._restoring:
                if process_id not in self.table:
                    handle = await self._restore(process_id, owner)
                    if handle is not None:
                        return handle
        with _as_tool_errors():
            return self.table.get(process_id, owner)

    async def _default(self, owner: Owner, name: str, program: Any) -> Handle:
        if self.store is not None and owner is not None and self.table.default_id(owner, name) is None:
            stored_id = await self.store.default(owner, name)
            if stored_id is not None:
                with contextlib.suppress(McpToolError):  # gone, or no longer this caller's
                    handle = await self._get(stored_id, owner)
                    if handle.program == name:
                        self.table.set_default(owner, name, handle)
                        return handle
        known = self.table.default_id(owner, name)
        with _as_tool_errors():
            handle = self.table.default(owner, name, program)
        if self.store is not None and handle.id != known and owner is not None:
            await self._persist(handle)
            await self.store.set_default(owner, name, handle.id)
        return handle

    # -- state database (--state) ----------------------------------------------------------------

    async def _described(self, owner: Owner) -> list[dict[str, Any]]:
        """The caller's processes: those in memory, and (with --state) those only on disk."""
        found = [h.describe() for h in self.table.owned_by(owner)]
        if self.store is not None and owner is not None:
            for stored in await self.store.owned(owner):
                if stored.process_id not in self.table:
                    found.append(stored.describe())
        return found

    async def _persist(self, handle: Handle) -> None:
        """Write what the process's last step changed (one transaction), before the client hears of it."""
        if self.store is None:
            return
        record = handle.persisted.record(
            handle.process, program=handle.program, owner=handle.owner, boot=self.boot, turns=handle.turns
        )
        try:
            await self.store.commit(record)
        except Exception as err:  # a full disk, a locked file: never report as done what is not kept
            log.error("process %s could not be saved to the state database: %s", handle.id, err)
            raise McpToolError(
                f"process '{handle.id}' could not be saved to the state database: {err}"
            ) from None
        handle.persisted.committed(record)

    async def _commit_turn(self, handle: Handle, length_before: int) -> None:
        """Count and store a completed run; when the store can not keep it, the process goes
        back to where it was before the run, and the caller hears that the turn failed."""
        handle.turns += 1
        try:
            await self._persist(handle)
        except McpToolError as err:
            handle.turns -= 1
            history = handle.process.history_view()
            if len(history) > length_before:
                handle.process.goto(history[length_before].id)
            raise McpToolError(f"{err}; the conversation is as it was before this message") from None

    async def _restore(self, process_id: str, owner: Owner) -> Handle | None:
        """A stored process the caller may use, back in memory; None when it is not theirs or unknown.

        Connection and session owners end with the server start that recorded them, so a process
        whose owner was such a session of an earlier start belongs to whoever holds its
        unguessable id (as under the session-less 2026 protocol)."""
        assert self.store is not None
        stored = await self.store.load(process_id)
        if stored is None or stored.document is None:
            return None
        if stored.owner is not None and stored.owner != owner:
            from_earlier_session = stored.owner.startswith(("sse:", "http:")) and stored.boot != self.boot
            if not from_earlier_session:
                return None
        published = self.catalog.programs.get(stored.program)
        if published is None:
            raise McpToolError(
                f"process '{process_id}' runs program '{stored.program}', no longer published here"
            )
        try:
            process = LLMProcess.restore(stored.document, published.program)
        except LLMProcError as err:
            raise McpToolError(f"process '{process_id}' can not be restored: {err}") from None
        new_owner = owner if stored.owner is not None else None
        with _as_tool_errors():
            handle = self.table.create(stored.program, published.program, new_owner, process=process)
        handle.turns = stored.turns
        handle.persisted = Persisted.of(process)
        if new_owner != stored.owner or stored.boot != self.boot:
            await self.store.set_owner(process_id, new_owner, self.boot)
        log.info("process %s restored from the state database (%d messages)", process_id, stored.length)
        return handle

    def _create(self, name: str, program: Any, owner: Owner, *, process: Any = None) -> Handle:
        with _as_tool_errors():
            return self.table.create(name, program, owner, process=process)

    def _published(self, name: str) -> PublishedProgram:
        key = name.removeprefix("run_")
        published = self.catalog.programs.get(key)
        if published is None:
            close = difflib.get_close_matches(key, list(self.catalog.programs), n=1, cutoff=0.7)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise McpToolError(
                f"unknown program '{name}'{hint} (programs: {', '.join(sorted(self.catalog.programs))})"
            )
        return published

    async def _run(self, handle: Handle, message: str, ctx: Any) -> Any:
        if not message.strip():
            raise McpToolError("message must not be empty")
        step = 0

        async def report(event: RunEvent) -> None:
            nonlocal step
            if isinstance(event, ToolCallStarted):
                text = f"calling tool {event.call.name}"
            elif isinstance(event, TurnFinished):
                text = f"model turn {event.iteration} done ({event.usage.output_tokens} tokens out)"
            else:
                return
            step += 1
            await ctx.report_progress(step, None, text)

        depth = self._depth_of(ctx)
        if depth > self.max_depth:
            raise McpToolError(
                f"this request is nested {depth} llmproc-mcp servers deep, more than --max-depth "
                f"{self.max_depth}; does a program call the server that runs it?"
            )
        if handle.process.program.provider == "mcp_sampling" and not ctx.session.can_send_request:
            return await self._run_in_rounds(handle, message, ctx, depth)
        length_before = len(handle.process.history_view())
        nesting = request_depth.set(depth)  # MCP servers the run uses are told depth + 1
        host = sampling_host.set(SamplingHost(ctx.session, ctx.request_id))  # for mcp_sampling programs
        logs = client_log.current_client.set(ctx)  # the run's log records go to this client
        try:
            with _as_tool_errors():  # provider failures, MCP servers that can not start, budgets
                result = await handle.process.run(message, on_event=Watch(report, _PROGRESS_EVENTS))
        finally:
            client_log.current_client.reset(logs)
            sampling_host.reset(host)
            request_depth.reset(nesting)
            handle.last_used = _now()
        await self._commit_turn(handle, length_before)
        return _result(handle, result, result.text)

    # -- sampling under MCP 2026-07-28: the run waits between tool-call rounds ----------------------

    async def _run_in_rounds(self, handle: Handle, message: str, ctx: Any, depth: int) -> Any:
        """Run an mcp_sampling program for a client without a back channel: each model turn is
        returned as an input_required round, and the retried call (carrying the client's answer
        and our request_state) resumes the waiting run."""
        self._check_waiting_room(handle.owner)
        parked = _ParkedRun(handle, len(handle.process.history_view()))
        token = secrets.token_urlsafe(16)
        self._parked[token] = parked
        session = ctx.session

        async def ask(params: Any) -> Any:
            answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            await parked.outbox.put(("sample", (params, answer)))  # children may ask at once:
            return await asyncio.wait_for(answer, _ROUND_TIMEOUT)  # each waits for its own answer

        async def body() -> None:
            request_depth.set(depth)
            sampling_host.set(SamplingHost(session, None, ask))
            try:
                result = await handle.process.run(message)
            except BaseException as err:
                if isinstance(err, asyncio.TimeoutError):  # the client went away between rounds
                    self._parked.pop(token, None)
                await parked.outbox.put(("error", err))
                if not isinstance(err, Exception):
                    raise
                return
            await parked.outbox.put(("done", result))

        parked.task = asyncio.create_task(body())
        return await self._next_round(token, parked)

    def _check_waiting_room(self, owner: Owner) -> None:
        """Unanswered rounds must not lock the server: bounded in all, and per identified caller
        to a quarter of that (callers without a session share the whole)."""
        room = max(1, min(_MAX_WAITING_RUNS, self.table.max_live // 2))
        if len(self._parked) >= room:
            raise McpToolError(
                f"{len(self._parked)} runs are waiting for sampling answers, the most this server "
                "keeps; answer or cancel one, or try again later"
            )
        if owner is not None:
            mine = sum(1 for parked in self._parked.values() if parked.handle.owner == owner)
            if mine >= max(1, room // 4):
                raise McpToolError(
                    f"you have {mine} runs waiting for sampling answers, the most one client may "
                    "keep; answer or cancel one first"
                )

    async def _resume(self, ctx: Any) -> Any:
        token = ctx.request_state
        parked = self._parked.get(token)
        if parked is None:
            raise McpToolError("unknown or expired request_state; call the tool again without it")
        answer = (ctx.input_responses or {}).get("sample")
        if answer is None:
            raise McpToolError("the retried call carries no answer to the sampling request 'sample'")
        waiting, parked.waiting = parked.waiting, None
        if waiting is None or waiting.done():
            raise McpToolError(
                "no sampling request is waiting for this request_state; it was answered already"
            )
        waiting.set_result(answer)
        return await self._next_round(token, parked)

    async def _next_round(self, token: str, parked: _ParkedRun) -> Any:
        kind, value = await parked.outbox.get()
        if kind == "sample":
            params, parked.waiting = value
            return InputRequiredResult(
                input_requests={"sample": CreateMessageRequest(params=params)}, request_state=token
            )
        self._parked.pop(token, None)
        handle = parked.handle
        handle.last_used = _now()
        if kind == "error":
            if isinstance(value, LLMProcError):
                raise McpToolError(str(value))
            if isinstance(value, asyncio.TimeoutError):
                raise McpToolError(f"the client did not answer a sampling round within {_ROUND_TIMEOUT:g}s")
            raise McpToolError(f"the run failed: {type(value).__name__}: {value}")
        await self._commit_turn(handle, parked.length_before)
        return _result(handle, value, value.text)

    def _depth_of(self, ctx: Any) -> int:
        """How deeply this request is nested: its depth header over HTTP, else this server's own."""
        request = getattr(ctx.request_context, "request", None)
        given = request.headers.get(DEPTH_HEADER) if request is not None else None
        if given is not None:
            try:
                return max(0, int(given))
            except ValueError:
                pass
        return composition_depth()

    async def _evict_idle(self, *, now: bool = False) -> None:
        """Close idle processes; at most once a second on the call path (the scan visits them all)."""
        clock = time.monotonic()
        if not now and clock - self._last_sweep < 1.0 and not self.table.evicted:
            return
        self._last_sweep = clock
        gone, self.table.evicted = [*self.table.evict_idle(), *self.table.evicted], []
        for handle in gone:
            await handle.process.aclose()

    async def evict_forever(self) -> None:
        """Idle processes leave memory even when no call comes along to notice them."""
        interval = max(0.5, min(60.0, self.table.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            await self._evict_idle(now=True)

    async def end_session(self, owner: str) -> None:
        """A session ended (the client closed it): its processes can no longer be reached, so
        they leave memory now rather than at the idle timeout. With --state they stay on disk."""
        for handle in self.table.release(owner):
            await handle.process.wait_idle()  # its runs were cancelled with the session
            await handle.process.aclose()
        self._legacy_sessions.pop(owner, None)  # and the session object kept for list_changed

    async def aclose(self) -> None:
        """Close every process (and so the MCP servers they use), all at once: each MCP server
        may take its grace period to stop, and a stopping server should not add them up."""
        async with anyio.create_task_group() as closing:
            for handle in list(self.table._handles.values()):
                closing.start_soon(self.table.remove, handle)


def _lean(tool: Any) -> Any:
    """The run tool without the generated `title` of every schema property: a thousand programs
    send a thousand copies of it in tools/list, and hosts put them into their model's context."""
    metadata = tool.fn_metadata.model_copy(
        update={"output_schema": _untitled(tool.fn_metadata.output_schema)}
    )
    return tool.model_copy(update={"parameters": _untitled(tool.parameters), "fn_metadata": metadata})


def _untitled(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _untitled(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema


def _few(names: list[str], shown: int = 5) -> str:
    """A few names for a log line, and how many more there are."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _now() -> float:
    return time.time()


def _result(handle: Handle, result: RunResult | None, text: str) -> Any:
    output = RunOutput(
        process_id=handle.id,
        program=handle.program,
        text=text,
        usage=result.usage.to_dict() if result else {},
        cost_usd=result.cost_usd if result else 0.0,
        tool_calls=[c.to_dict() for c in result.tool_calls] if result else [],
    )
    # the text names the process too: some hosts (Gemini CLI) show their model only the text,
    # and without the id it could never continue, fork or reset this process
    shown = (
        f"{text}\n\n[process_id: {handle.id}]"
        if result
        else f"started process {handle.id} of program '{handle.program}'"
    )
    return CallToolResult(
        content=[TextContent(type="text", text=shown)], structured_content=output.model_dump(mode="json")
    )


_TALKS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)

_SPAWN = (
    "Start a new, separate process of a published program and return its process_id; with a "
    "message, also run it and return the reply. Use run_<program> with that process_id to continue."
)
_RESET = (
    "Clear a conversation: the process with process_id, your conversation with a program, or, with "
    "neither, all your processes."
)
_FORK = (
    "Copy a process with its whole conversation; the copy gets its own process_id and diverges from there."
)
_LIST = "List your processes (program, turns, cost, last activity) and the programs this server publishes."
