"""The 2026-07-28 tasks extension (`io.modelcontextprotocol/tasks`) as a client of the `mcp`
SDK speaks it: a `ClientExtension` that declares it in every request's capabilities and claims
the `resultType: "task"` answer of a `tools/call`, plus `tasks/get|update|cancel` sent through
the SDK's session (the SDK has the extension hook, not the extension)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import ConfigDict, TypeAdapter

EXTENSION = "io.modelcontextprotocol/tasks"
_RAW = TypeAdapter(dict[str, Any])

Answer = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Answers one input request of a task (its method and params)."""


class CreatedTask(Result):
    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    poll_interval_ms: int | None = None


class _TaskParams(RequestParams):
    model_config = ConfigDict(extra="allow")
    task_id: str


class _TaskRequest(Request[_TaskParams, str]):
    method: str
    params: _TaskParams
    name_param = "taskId"  # SEP-2663: tasks/* carry the task id as Mcp-Name, for load balancers


class Tasks(ClientExtension):
    """Opts in; a claimed task is polled to its end (answering input with `answer`)."""

    identifier = EXTENSION

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer = answer
        self.created: list[CreatedTask] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=self._resolve)]

    async def _resolve(self, created: CreatedTask, context: ClaimContext) -> CallToolResult:
        self.created.append(created)
        task = await settle(context.session, created.task_id, self.answer)
        if task["status"] == "completed":
            return CallToolResult.model_validate(task["result"])
        raise RuntimeError(f"task {created.task_id} ended {task['status']}: {task.get('error')}")


async def send(session: Any, method: str, task_id: str, **params: Any) -> dict[str, Any]:
    """tasks/get, tasks/update or tasks/cancel through the SDK session (the extension stamps it)."""
    request = _TaskRequest(method=method, params=_TaskParams(task_id=task_id, **params))
    result: dict[str, Any] = await session.send_request(request, _RAW)
    return result


async def settle(
    session: Any, task_id: str, answer: Answer | None = None, every: float = 0.05
) -> dict[str, Any]:
    """Poll until the task ends; answer each input request once."""
    answered: set[str] = set()
    while True:
        task = await send(session, "tasks/get", task_id)
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        if task["status"] == "input_required" and answer is not None:
            responses = {}
            for key, request in task["inputRequests"].items():
                if key not in answered:
                    answered.add(key)
                    responses[key] = await answer(request["method"], request["params"])
            if responses:
                await send(session, "tasks/update", task_id, inputResponses=responses)
                continue
        await asyncio.sleep(every)


async def start(client: Client, tool: str, arguments: dict[str, Any]) -> CreatedTask:
    """A tools/call whose task is not polled: the caller collects it (maybe from another client)."""
    created = await client.session.call_tool(tool, arguments, allow_claimed=True)
    assert isinstance(created, CreatedTask), created
    return created
