"""The MCP front end: each published program becomes `run_<name>`, plus spawn, reset, fork and
list_processes. This module wires the parts and translates between MCP and the runtime; the
work is done by `LLMProcess`. The parts, one job each:

    tool_server.py   the MCP wire (the SDK's low-level Server) and the tools it serves
    schemas.py       what the tools look like: names, schemas, results
    directory.py     which process a call reaches, who owns it, and storing it (--state)
    callers.py       who is calling, how deeply nested, how each hears that tools changed
    rounds.py        runs that ask the client between rounds (2026-07-28, no back channel)
    tasks.py         runs the client collects later (MCP Tasks); task_wire.py both eras' wire
    heartbeat.py     progress at least every --heartbeat seconds while a run is in flight
    resources.py     what a host reads: processes, transcripts, programs; transcript.py renders
    prompts.py       programs as prompts (slash commands), and completion of their arguments
    catalog.py       the published programs; handles.py the live processes; client_log.py logs
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import anyio
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged
from mcp_types import CallToolResult

from ..client_channel import ClientChannel, current_client
from ..composition import request_depth
from ..errors import CatalogError, RequestError
from ..events import Watch
from ..result import RunResult
from ..store import ProcessStore
from ..task_store import MemoryTaskStore
from ..version import __version__
from . import client_log, schemas
from .callers import LegacySessions, Transport, caller_of, depth_of
from .catalog import Catalog
from .directory import ProcessDirectory
from .handles import Handle, ProcessTable
from .heartbeat import EVENTS, Heartbeat
from .prompts import Prompts
from .resources import Resources
from .rounds import InputRounds
from .task_wire import TaskSession, TaskWire
from .tasks import MAX_TTL_MS, TaskRunner
from .tool_server import ToolCall, ToolDef, ToolServer, model_result, text_result

log = logging.getLogger("llmproc.mcp_server")

__all__ = ["LLMProcServer", "Transport", "caller_of"]


class LLMProcServer:
    """Publishes a catalog over MCP (`self.mcp`, a `ToolServer`) and serves its tools' calls."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        transport: Transport = "stdio",
        table: ProcessTable | None = None,
        max_depth: int = 4,
        store: ProcessStore | None = None,
        lease_seconds: float = 30.0,
        lease_wait: float = 30.0,
        heartbeat: float = 10.0,
        max_task_ttl_ms: int = MAX_TTL_MS,
    ) -> None:
        self.catalog = catalog
        self.transport = transport
        self.max_depth = max_depth
        self.heartbeat = heartbeat
        table = table if table is not None else ProcessTable()  # an empty table is falsy
        self.directory = ProcessDirectory(
            table, store, lambda: self.catalog, lease_seconds=lease_seconds, lease_wait=lease_wait
        )
        self.rounds = InputRounds(table.max_live, self._finish)
        self._sessions = LegacySessions()
        self._bus = InMemorySubscriptionBus()
        client_log.install()
        self.resources = Resources(
            self.directory,
            lambda: self.catalog,
            lambda ctx: self._caller(ToolCall(ctx, "")),
            lambda ctx: caller_of(ToolCall(ctx, ""), self.transport, principal=False),
            self._bus,
        )
        self.mcp = ToolServer(
            "llmproc",
            version=__version__,
            instructions=schemas.INSTRUCTIONS,
            bus=self._bus,
            resources=self.resources,
            prompts=Prompts(lambda: self.catalog, self.directory.published, self.resources.complete),
        )
        self._run_defs: dict[tuple[Any, ...], ToolDef] = {}
        self._task_tools: set[str] = {schemas.SPAWN.name}
        self.tasks = TaskRunner(
            store if store is not None else MemoryTaskStore(),
            self.directory.holder,
            alive_seconds=lease_seconds,
            max_ttl_ms=max_task_ttl_ms,
        )
        TaskWire(
            self.tasks, lambda ctx: self._caller(ToolCall(ctx, "")), self._task_tools.__contains__
        ).install(self.mcp)
        self._system_tools = [
            ToolDef(schemas.SPAWN, schemas.SpawnArguments, self._spawn),
            ToolDef(schemas.RESET, schemas.ResetArguments, self._reset),
            ToolDef(schemas.FORK, schemas.ForkArguments, self._fork),
            ToolDef(schemas.LIST, schemas.ListArguments, self._list),
        ]
        self._publish()

    @property
    def table(self) -> ProcessTable:
        return self.directory.table

    @property
    def store(self) -> ProcessStore | None:
        return self.directory.store

    def _publish(self) -> None:
        self.mcp.publish(self._tool_defs(self.catalog))

    def _tool_defs(self, catalog: Catalog) -> list[ToolDef]:
        """One run_<name> tool per program, then the system tools. A program whose tool is
        unchanged keeps its definition: a reload builds only what changed."""
        known, self._run_defs = self._run_defs, {}
        for p in catalog.programs.values():
            title, icon = p.program.config.server.title, p.program.server_icon
            key = (p.name, p.tool_name, p.description, title, icon)
            self._run_defs[key] = known.get(key) or ToolDef(
                schemas.run_tool(p.tool_name, p.description, title, icon),
                schemas.RunArguments,
                self._run_tool(p.name),
            )
        self._task_tools.clear()  # (the set the task wire reads: one object, kept)
        self._task_tools.update([schemas.SPAWN.name, *(key[1] for key in self._run_defs)])
        return [*self._run_defs.values(), *self._system_tools]

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
        self.catalog = catalog
        self._publish()
        added, removed = sorted(set(catalog.programs) - before), sorted(before - set(catalog.programs))
        log.info(
            "programs reloaded: %d published%s%s", len(catalog.programs),
            f"; added {_few(added)}" if added else "", f"; removed {_few(removed)}" if removed else "",
        )  # fmt: skip
        for event in (ToolsListChanged(), PromptsListChanged(), ResourcesListChanged()):
            await self._bus.publish(event)
        await self._sessions.tell_tools_changed()  # and the prompts and resources lists
        return True

    # -- tools ---------------------------------------------------------------------------------

    def _run_tool(self, name: str) -> Any:
        async def run(call: ToolCall, arguments: Any) -> Any:
            if call.request_state:  # a 2026-07-28 client answering a sampling round
                return await self.rounds.resume(call)
            owner = self._caller(call)
            await self.directory.evict_idle()
            if arguments.process_id:
                handle = await self.directory.get(arguments.process_id, owner)
                if handle.program != name:
                    raise RequestError(
                        f"process '{arguments.process_id}' runs program '{handle.program}'; "
                        f"call run_{handle.program}"
                    )
            else:
                published = self.directory.published(name)
                handle = await self.directory.default(owner, published.name, published.program)
            return await self._run(handle, arguments.message, call)

        return run

    async def _spawn(self, call: ToolCall, arguments: Any) -> Any:
        if call.request_state:  # a 2026-07-28 client answering a sampling round
            return await self.rounds.resume(call)
        published = self.directory.published(arguments.program)
        handle = self.directory.create(published.name, published.program, caller_of(call, self.transport))
        if arguments.message is None:
            await self.directory.persist(handle)
            await self._processes_changed()
            return schemas.run_result(handle.id, handle.program, None)
        try:
            return await self._run(handle, arguments.message, call)
        except BaseException:  # the caller never learns this process's id: leave nothing behind
            with anyio.CancelScope(shield=True):
                await self.directory.remove(handle)
            raise

    async def _reset(self, call: ToolCall, arguments: Any) -> CallToolResult:
        owner = self._caller(call)
        if arguments.process_id:
            handles = [await self.directory.get(arguments.process_id, owner)]
        elif arguments.program:
            name = self.directory.published(arguments.program).name
            handles = await self.directory.owned(owner, name)
        else:
            handles = await self.directory.owned(owner)
        for handle in handles:
            if handle.process.running:
                raise RequestError(f"process '{handle.id}' is running; reset it when the run has finished")
            async with self.directory.leased(handle):
                handle.process.reset_state()
                handle.turns = 0
                await self.directory.persist(handle, last=True)
        text = f"cleared {len(handles)} process{'es' if len(handles) != 1 else ''}"
        return text_result(text, {"result": text})

    async def _fork(self, call: ToolCall, arguments: Any) -> CallToolResult:
        owner = self._caller(call)
        parent = await self.directory.current(await self.directory.get(arguments.process_id, owner))
        published = self.directory.published(parent.program)
        child = self.directory.create(parent.program, published.program, owner, process=parent.process.fork())
        child.turns = parent.turns
        await self.directory.persist(child)
        await self._processes_changed()
        return model_result(
            schemas.ForkOutput(process_id=child.id, program=child.program, parent_id=parent.id)
        )

    async def _list(self, call: ToolCall, arguments: Any) -> CallToolResult:
        await self.directory.evict_idle(now=True)
        owner = self._caller(call)
        described = await self.directory.described(owner)
        listing = schemas.ProcessList(
            processes=[schemas.ProcessInfo.model_validate(d) for d in described],
            programs=sorted(self.catalog.programs),
            unavailable_programs=self.catalog.failures,
        )
        return model_result(listing)

    def _caller(self, call: ToolCall) -> Any:
        self._sessions.seen(call, self.transport)
        return caller_of(call, self.transport)

    # -- running -------------------------------------------------------------------------------

    async def _run(self, handle: Handle, message: str, call: ToolCall) -> Any:
        if not message.strip():
            raise RequestError("message must not be empty")
        depth = depth_of(call)
        if depth > self.max_depth:
            raise RequestError(
                f"this request is nested {depth} llmproc-mcp servers deep, more than --max-depth "
                f"{self.max_depth}; does a program call the server that runs it?"
            )
        session = call.session
        if handle.process.program.asks_client and not session.can_send_request:
            return await self.rounds.start(handle, message, call, depth, hold=self.directory.leased)
        ask = session.ask if isinstance(session, TaskSession) else None  # a task asks through its own
        interval = self.heartbeat if ask is not None or call.progress_token is not None else 0
        async with self.directory.leased(handle):  # with --state: this server's turn on it
            length_before = len(handle.process.history_view())
            nesting = request_depth.set(depth)  # MCP servers the run uses are told depth + 1
            client = current_client.set(ClientChannel(session, call.request_id, ask))
            logs = client_log.current_call.set(call)  # the run's log records go to this client
            try:
                async with Heartbeat(
                    lambda step, text: call.report_progress(step, None, text), interval
                ) as beat:
                    result = await handle.process.run(message, on_event=Watch(beat.on_event, EVENTS))
            finally:
                client_log.current_call.reset(logs)
                current_client.reset(client)
                request_depth.reset(nesting)
                handle.last_used = time.time()
            return await self._finish(handle, result, length_before)

    async def _finish(self, handle: Handle, result: RunResult, length_before: int) -> CallToolResult:
        """Store the finished run (undone if it can not be), then answer with it."""
        await self.directory.commit_turn(handle, length_before)
        await self.resources.turn_completed(handle)
        if handle.turns == 1:  # a new conversation: resource lists changed
            await self._processes_changed()
        return schemas.run_result(handle.id, handle.program, result)

    async def _processes_changed(self) -> None:
        await self.resources.processes_changed()
        await self._sessions.tell_resources_changed()

    # -- lifetime ------------------------------------------------------------------------------

    async def evict_forever(self) -> None:
        await self.directory.evict_forever()

    async def end_session(self, owner: str) -> None:
        """A session ended (the client closed it): its processes can no longer be reached, so
        they leave memory now rather than at the idle timeout. With --state they stay on disk.
        Its tasks still running stop: nobody can collect them now."""
        await self.tasks.abandon(owner)
        await self.directory.release(owner)
        self._sessions.forget(owner)  # and the session object kept for list_changed
        self.resources.forget(owner)

    async def aclose(self) -> None:
        await self.tasks.aclose()  # running tasks end failed, and say so, before the store closes
        await self.directory.aclose()


def _few(names: list[str], shown: int = 5) -> str:
    """A few names for a log line, and how many more there are."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
