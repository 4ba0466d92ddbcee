"""MCP Tasks on the wire, in both protocol eras, over the runner in tasks.py.

2025-11-25: the server declares `tasks` in its capabilities and run tools declare
`execution.taskSupport = "optional"`; a `tools/call` carrying `task` is answered at once with
`{"task": Task}`; `tasks/get`, `tasks/result` (waits for the end, and carries the questions the
task asks the client meanwhile), `tasks/list` (the caller's own) and `tasks/cancel`; each status
change is sent as `notifications/tasks/status`.

2026-07-28: the `io.modelcontextprotocol/tasks` extension. A client opts in per request (its
`_meta` capabilities); a run is then answered with `resultType: "task"`; `tasks/get` carries
the result when done and the questions while input is wanted, `tasks/update` brings answers,
`tasks/cancel` stops it. A client that did not opt in never gets a task.

The SDK serves neither (it has the 2025 types), so tasks come in as a server middleware, the
SDK's public hook that sees a request before its result is shaped: a task's `tools/call`
answers with a task, and runs the rest of the chain (validation, the tool) in the background.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import warnings
from collections.abc import Callable
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    CancelTaskRequestParams,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    GetTaskPayloadRequestParams,
    GetTaskRequestParams,
    PaginatedRequestParams,
    RequestParams,
    ServerTasksCapability,
    ServerTasksRequestsCapability,
    TasksCallCapability,
    TasksCancelCapability,
    TasksListCapability,
    TaskStatusNotification,
    TaskStatusNotificationParams,
    TasksToolsCapability,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from ..task_store import TaskRecord
from .tasks import POLL_INTERVAL_MS, Question, RunningTask, TaskRunner

EXTENSION = "io.modelcontextprotocol/tasks"
RELATED_TASK = "io.modelcontextprotocol/related-task"

LEGACY_CAPABILITY = ServerTasksCapability(
    list=TasksListCapability(),
    cancel=TasksCancelCapability(),
    requests=ServerTasksRequestsCapability(tools=TasksToolsCapability(call=TasksCallCapability())),
)
"""What a 2025-11-25 handshake declares: tools/call as tasks, tasks/list and tasks/cancel."""

OwnerOf = Callable[[ServerRequestContext[Any, Any]], Any]


class UpdateTaskParams(RequestParams):
    task_id: str
    input_responses: dict[str, Any] = Field(default_factory=dict)


def is_modern(ctx: ServerRequestContext[Any, Any]) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def opted_in(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this 2026-07-28 request declared the tasks extension in its capabilities."""
    meta = ctx.params.get("_meta") if isinstance(ctx.params, dict) else None
    capabilities = meta.get(CLIENT_CAPABILITIES_META_KEY) if isinstance(meta, dict) else None
    extensions = capabilities.get("extensions") if isinstance(capabilities, dict) else None
    return isinstance(extensions, dict) and EXTENSION in extensions


class TaskWire:
    """The tasks middleware and request handlers of one server."""

    def __init__(self, runner: TaskRunner, owner_of: OwnerOf, supports: Callable[[str], bool]) -> None:
        self.runner = runner
        self._owner_of = owner_of
        self._supports = supports

    def install(self, server: Any) -> None:
        """Serve tasks on `server` (the SDK's low-level Server): the middleware and the methods."""
        server.tasks = (LEGACY_CAPABILITY, EXTENSION)
        server.middleware.append(self)
        server.add_request_handler("tasks/get", GetTaskRequestParams, self._get)
        server.add_request_handler("tasks/result", GetTaskPayloadRequestParams, self._result)
        server.add_request_handler("tasks/list", PaginatedRequestParams, self._list)
        server.add_request_handler("tasks/cancel", CancelTaskRequestParams, self._cancel)
        server.add_request_handler("tasks/update", UpdateTaskParams, self._update)

    # -- tools/call as a task ------------------------------------------------------------------

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or not isinstance(ctx.params, dict):
            return await call_next(ctx)
        params = ctx.params
        name = params.get("name")
        modern = is_modern(ctx)
        if modern:  # the server decides: a run for a client that can take a task
            if not opted_in(ctx) or params.get("requestState") or not self._supports(str(name)):
                return await call_next(ctx)
            ttl = None
        else:
            task = params.get("task")
            if task is None:
                return await call_next(ctx)
            if not self._supports(str(name)):
                raise MCPError(
                    METHOD_NOT_FOUND, f"tool '{name}' can not be called as a task (taskSupport: forbidden)"
                )
            ttl = task.get("ttl") if isinstance(task, dict) else None
            if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1):
                raise MCPError(INVALID_PARAMS, "task.ttl must be a positive number of milliseconds")
        session = ctx.session

        async def work(running: RunningTask) -> dict[str, Any]:
            stand_in: Any = TaskSession(session, running, self.runner, modern, ctx)  # for the SDK's session
            inside = dataclasses.replace(ctx, session=stand_in)
            result = await call_next(inside)
            return result if isinstance(result, dict) else _dump(result)

        listener = None if modern else _status_notifier(session)
        record = await self.runner.start(
            self._owner_of(ctx), str(name), ctx.protocol_version, ttl, work, listener
        )
        if modern:
            return {"resultType": "task", **modern_task(record, detailed=False)}
        return {"task": legacy_task(record)}

    # -- tasks/* -------------------------------------------------------------------------------

    def _check(self, ctx: ServerRequestContext[Any, Any], method: str) -> None:
        modern = is_modern(ctx)
        if modern and method in ("tasks/result", "tasks/list"):
            raise MCPError(METHOD_NOT_FOUND, "Method not found", data=method)
        if not modern and method == "tasks/update":
            raise MCPError(METHOD_NOT_FOUND, "Method not found", data=method)
        if modern and not opted_in(ctx):
            raise MCPError(
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                f"{method} needs the client to declare the {EXTENSION} extension in its request capabilities",
                data={"requiredCapabilities": {"extensions": {EXTENSION: {}}}},
            )

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: GetTaskRequestParams) -> dict[str, Any]:
        self._check(ctx, "tasks/get")
        record = await self.runner.get(params.task_id, self._owner_of(ctx))
        return modern_task(record) if is_modern(ctx) else legacy_task(record)

    async def _result(
        self, ctx: ServerRequestContext[Any, Any], params: GetTaskPayloadRequestParams
    ) -> dict[str, Any]:
        self._check(ctx, "tasks/result")
        session = ctx.session

        async def deliver(question: Question) -> Any:
            if question.method != "sampling/createMessage":
                raise MCPError(INVALID_PARAMS, f"this server does not ask {question.method}")
            request = CreateMessageRequest(
                params=CreateMessageRequestParams.model_validate(
                    {**question.params, "_meta": {RELATED_TASK: {"taskId": params.task_id}}}
                )
            )
            with warnings.catch_warnings():  # sampling is deprecated in 2026-07-28, not gone
                warnings.simplefilter("ignore")
                return await session.send_request(
                    request,
                    CreateMessageResult,
                    metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
                )

        record = await self.runner.wait(params.task_id, self._owner_of(ctx), deliver)
        if record.status == "completed" and record.result is not None:
            result = dict(record.result)
            result["_meta"] = {**(result.get("_meta") or {}), RELATED_TASK: {"taskId": record.task_id}}
            return result
        if record.status == "failed" and record.error is not None:
            error = record.error
            raise MCPError(
                int(error.get("code", -32603)), str(error.get("message", "")), data=error.get("data")
            )
        raise MCPError(INVALID_PARAMS, f"task '{record.task_id}' was cancelled; it has no result")

    async def _list(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams
    ) -> dict[str, Any]:
        self._check(ctx, "tasks/list")
        records, cursor = await self.runner.list(self._owner_of(ctx), params.cursor)
        listing: dict[str, Any] = {"tasks": [legacy_task(r) for r in records]}
        if cursor is not None:
            listing["nextCursor"] = cursor
        return listing

    async def _cancel(
        self, ctx: ServerRequestContext[Any, Any], params: CancelTaskRequestParams
    ) -> dict[str, Any]:
        self._check(ctx, "tasks/cancel")
        record = await self.runner.cancel(params.task_id, self._owner_of(ctx))
        return {} if is_modern(ctx) else legacy_task(record)

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> dict[str, Any]:
        self._check(ctx, "tasks/update")
        await self.runner.answer(params.task_id, self._owner_of(ctx), params.input_responses)
        return {}


class TaskSession:
    """The client as a tool call running as a task sees it: its request has been answered, so
    progress becomes the task's status message (and, in the 2025 era, progress notifications
    on the session's own stream, as the progress token lives as long as the task), and log
    messages go to that stream; a 2026-07-28 task has no stream, and sends nothing."""

    can_send_request = True

    def __init__(
        self,
        session: Any,
        running: RunningTask,
        runner: TaskRunner,
        modern: bool,
        ctx: ServerRequestContext[Any, Any],
    ) -> None:
        self._session = session
        self._running = running
        self._runner = runner
        self._modern = modern
        meta = ctx.params.get("_meta") if isinstance(ctx.params, dict) else None
        self._token = meta.get("progressToken") if isinstance(meta, dict) else None

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        if message:
            self._runner.progress(self._running, message)
        if self._modern or self._token is None:
            return
        with contextlib.suppress(Exception):  # no stream open now: the status message still says it
            await self._session.send_progress_notification(self._token, progress, total, message)

    async def send_log_message(
        self, level: Any, data: Any, logger: str | None = None, related_request_id: Any = None
    ) -> None:
        if not self._modern:
            await self._session.send_log_message(level, data, logger=logger)

    async def ask(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        """A sampling request of the run (mcp_sampling): the task waits for the client's answer."""
        wire = params.model_dump(by_alias=True, mode="json", exclude_none=True)
        answer = await self._runner.ask(
            self._running, "sampling/createMessage", wire, "a sampling request (the next model turn)"
        )
        return (
            answer if isinstance(answer, CreateMessageResult) else CreateMessageResult.model_validate(answer)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def _status_notifier(session: Any) -> Any:
    async def notify(record: TaskRecord) -> None:
        params = TaskStatusNotificationParams.model_validate(legacy_task(record))
        await session.send_notification(TaskStatusNotification(params=params))

    return notify


def _iso(stamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _base(record: TaskRecord) -> dict[str, Any]:
    task: dict[str, Any] = {"taskId": record.task_id, "status": record.status}
    if record.message:
        task["statusMessage"] = record.message
    task["createdAt"], task["lastUpdatedAt"] = _iso(record.created), _iso(record.updated)
    return task


def legacy_task(record: TaskRecord) -> dict[str, Any]:
    """A 2025-11-25 `Task`."""
    task = _base(record)
    task["ttl"] = record.ttl_ms
    if not record.terminal:
        task["pollInterval"] = POLL_INTERVAL_MS
    return task


def modern_task(record: TaskRecord, *, detailed: bool = True) -> dict[str, Any]:
    """A 2026-07-28 `Task`; `detailed`: with what its status carries (result, error, questions)."""
    task = _base(record)
    task["ttlMs"] = record.ttl_ms
    task["pollIntervalMs"] = POLL_INTERVAL_MS
    if not detailed:
        return task
    if record.status == "input_required":
        task["inputRequests"] = record.input_requests or {}
    elif record.status == "completed":
        task["result"] = record.result or {"content": []}
    elif record.status == "failed":
        task["error"] = record.error or {"code": -32603, "message": record.message or "failed"}
    return task


def _dump(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    dumped: dict[str, Any] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dumped
