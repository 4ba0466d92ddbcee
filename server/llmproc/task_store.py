"""Where MCP tasks are kept: a task's status and result outlive the call that started it.

A task is a tool call the client collects later (MCP Tasks). Its record must survive the
connection that created it, a restart of the server, and be readable on every replica, so
it lives in the same state database as the processes (`SqliteStore`, `PostgresStore`);
without --state, in `MemoryTaskStore`. The server running a task marks it alive every few
seconds (`alive_until`, the store's clock): a task still `working` whose server stopped
marking it is one whose server died, and is reported failed, never left working forever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]

TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


@dataclass
class TaskRecord:
    """One task as stored: who may see it, where it stands, and its outcome once it has one."""

    task_id: str
    owner: str | None
    """The caller it belongs to; None: whoever holds its unguessable id (2026-07-28, no principal)."""
    tool: str
    era: str
    """The protocol version it was created under: the shapes its result and status take."""
    status: TaskStatus = "working"
    message: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    ttl_ms: int = 3_600_000
    """Kept this long from `created`, then forgotten."""
    result: dict[str, Any] | None = None
    """The call's result as the wire carries it (completed)."""
    error: dict[str, Any] | None = None
    """The JSON-RPC error the call ended with (failed): code, message, maybe data."""
    input_requests: dict[str, Any] | None = None
    """What the task waits for the client to answer (input_required, 2026-07-28)."""
    holder: str = ""
    """The server running it."""
    alive: bool = True
    """As loaded: its server marked it alive recently (or it has ended)."""
    cancel_requested: bool = False
    """A tasks/cancel reached a server that is not running it: the runner stops it when it sees this."""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def expires(self) -> float:
        return self.created + self.ttl_ms / 1000

    def body(self) -> dict[str, Any]:
        """The parts kept as one JSON document."""
        return {"result": self.result, "error": self.error, "input_requests": self.input_requests}


class TaskStore(Protocol):
    async def save_task(self, record: TaskRecord, alive_seconds: float) -> None:
        """Create or replace the task's record; it counts as alive `alive_seconds` from now."""

    async def load_task(self, task_id: str) -> TaskRecord | None:
        """The task, or None when it is unknown or past its ttl (then it is forgotten)."""

    async def touch_task(self, task_id: str, holder: str, alive_seconds: float) -> bool | None:
        """Mark a running task alive again; whether a cancel was asked for (None: not running here)."""

    async def request_task_cancel(self, task_id: str) -> None:
        """Ask the server running the task to stop it."""

    async def owner_tasks(self, owner: str, limit: int, before: tuple[float, str] | None) -> list[TaskRecord]:
        """The owner's live tasks, newest first, after the (created, id) of the last one seen."""


class MemoryTaskStore:
    """Tasks of a server without --state: they live as long as the server does."""

    def __init__(self) -> None:
        self._tasks: dict[str, tuple[TaskRecord, float]] = {}

    async def save_task(self, record: TaskRecord, alive_seconds: float) -> None:
        self._forget_expired()
        self._tasks[record.task_id] = (replace(record), time.time() + alive_seconds)

    async def load_task(self, task_id: str) -> TaskRecord | None:
        found = self._tasks.get(task_id)
        if found is None:
            return None
        record, alive_until = found
        if record.expires <= time.time():
            del self._tasks[task_id]
            return None
        return replace(record, alive=record.terminal or alive_until > time.time())

    async def touch_task(self, task_id: str, holder: str, alive_seconds: float) -> bool | None:
        found = self._tasks.get(task_id)
        if found is None or found[0].holder != holder or found[0].terminal:
            return None
        self._tasks[task_id] = (found[0], time.time() + alive_seconds)
        return found[0].cancel_requested

    async def request_task_cancel(self, task_id: str) -> None:
        found = self._tasks.get(task_id)
        if found is not None:
            found[0].cancel_requested = True

    async def owner_tasks(self, owner: str, limit: int, before: tuple[float, str] | None) -> list[TaskRecord]:
        self._forget_expired()
        mine = sorted(
            (r for r, _ in self._tasks.values() if r.owner == owner),
            key=lambda r: (r.created, r.task_id),
            reverse=True,
        )
        if before is not None:
            mine = [r for r in mine if (r.created, r.task_id) < before]
        return [replace(r) for r in mine[:limit]]

    def _forget_expired(self) -> None:
        now = time.time()
        for task_id in [t for t, (r, _) in self._tasks.items() if r.expires <= now]:
            del self._tasks[task_id]


def record_from_row(row: Any, body: dict[str, Any], alive: bool) -> TaskRecord:
    """A record from a stored row's columns (both SQL stores keep the same columns)."""
    return TaskRecord(
        task_id=row[0], owner=row[1], tool=row[2], era=row[3], status=row[4], message=row[5],
        created=row[6], updated=row[7], ttl_ms=row[8], result=body.get("result"),
        error=body.get("error"), input_requests=body.get("input_requests"), holder=row[10],
        alive=alive or row[4] in TERMINAL, cancel_requested=bool(row[11]),
    )  # fmt: skip


TASK_COLUMNS = "id, owner, tool, era, status, message, created, updated, ttl_ms, body, holder, cancel"
