"""Tool calls that the client collects later (MCP Tasks), whichever protocol era asked.

A task runs a tool call in the background of the server: the call that created it is
answered at once with the task's id, and the client polls (or waits) for the outcome. The
runner here knows nothing of either era's wire (task_wire.py has both): it starts the work,
keeps the record in the store (so it survives the connection, a restart, and is readable on
every replica), marks it alive while it runs, answers questions the work asks the client
(an `mcp_sampling` turn) through whoever is collecting, and ends it exactly once: completed,
failed, or cancelled. A task whose server died while it ran is failed by the next server
that reads it; its process is as it was before the run, because a turn is stored only when
it completes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from ..errors import StoreError
from ..task_store import TaskRecord, TaskStore

log = logging.getLogger("llmproc.mcp_server")

DEFAULT_TTL_MS = 3_600_000
"""How long a task is kept when its client asks for no ttl: an hour."""
MAX_TTL_MS = 7 * 24 * 3_600_000
"""The longest ttl a client may ask for (a week), unless the server is told otherwise."""
POLL_INTERVAL_MS = 1000
"""What clients are told to wait between polls."""
LIST_PAGE = 50

Work = Callable[["RunningTask"], Awaitable[dict[str, Any]]]
"""The call a task runs: its result as the wire carries it, or an MCPError."""
Deliver = Callable[["Question"], Awaitable[Any]]
"""Sends a question to the client on the collecting call's channel; returns the answer."""
Listener = Callable[[TaskRecord], Awaitable[None]]
"""Told of every status change of a task (2025-era status notifications)."""


class UnknownTask(MCPError):
    """Never-created, expired, and another caller's tasks all read alike: ids leak nothing."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            INVALID_PARAMS, f"Failed to retrieve task: Task not found ('{task_id}' is unknown or has expired)"
        )


@dataclass(eq=False)
class Question:
    """A request the work sends the client (through whoever collects), and its answer."""

    key: str
    method: str
    params: Any
    answer: asyncio.Future[Any]
    sent: bool = False


CANCELLED_BY_CLIENT = "cancelled by the client; the process is as it was before the run"


@dataclass(eq=False)
class RunningTask:
    """A task this server runs: its record as it stands, and the live parts of it."""

    record: TaskRecord
    job: asyncio.Task[None] | None = None
    questions: dict[str, Question] = field(default_factory=dict)
    asked: int = 0
    cancelling: str | None = None
    """Why the task is being cancelled, once it is (the status message it ends with)."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    listener: Listener | None = None
    on_question: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """Wake everyone waiting on this task, then start a new wait."""
        self.changed.set()
        self.changed = asyncio.Event()


class TaskRunner:
    """Starts, tracks and ends tasks; reads and writes their records in `store`."""

    def __init__(
        self,
        store: TaskStore,
        holder: str,
        *,
        alive_seconds: float = 30.0,
        max_ttl_ms: int = MAX_TTL_MS,
        prefix: str = "",
    ) -> None:
        self.store = store
        self.holder = holder
        self.alive_seconds = alive_seconds
        self.max_ttl_ms = max_ttl_ms
        self.prefix = prefix
        """Put before each task id: under --workers or --replica-name it names who runs the task."""
        self._running: dict[str, RunningTask] = {}

    # -- starting and ending -------------------------------------------------------------------

    async def start(
        self,
        owner: str | None,
        tool: str,
        era: str,
        ttl_ms: int | None,
        work: Work,
        listener: Listener | None,
    ) -> TaskRecord:
        """Store the new task, then start its work: once this returns, tasks/get finds it."""
        ttl = DEFAULT_TTL_MS if ttl_ms is None else max(1, min(int(ttl_ms), self.max_ttl_ms))
        record = TaskRecord(
            self.prefix + secrets.token_urlsafe(24), owner, tool, era, ttl_ms=ttl,
            message="the run has started", holder=self.holder,
        )  # fmt: skip
        try:
            await self.store.save_task(record, self.alive_seconds)
        except StoreError as err:
            raise MCPError(INTERNAL_ERROR, f"the task could not be stored: {err}") from None
        running = RunningTask(replace(record), listener=listener)
        self._running[record.task_id] = running
        running.job = asyncio.create_task(self._drive(running, work), name=f"task {record.task_id}")
        return record

    async def _drive(self, running: RunningTask, work: Work) -> None:
        keeper = asyncio.create_task(self._keep_alive(running))
        record = running.record
        try:
            result = await work(running)
        except asyncio.CancelledError:
            if running.cancelling:
                self._end(running, "cancelled", running.cancelling)
            else:  # the server is stopping
                text = "the server stopped before the task finished; the process is as it was before the run"
                self._end(running, "failed", text, error={"code": INTERNAL_ERROR, "message": text})
                await self._finish(running, keeper)
                raise
        except MCPError as err:
            self._end(running, "failed", err.error.message, error=err.error.model_dump(exclude_none=True))
        except Exception as err:  # a bug: the client still gets an answer
            log.exception("task %s failed", record.task_id)
            self._end(
                running,
                "failed",
                f"{type(err).__name__}: {err}",
                error={"code": INTERNAL_ERROR, "message": str(err)},
            )
        else:
            text = (
                "the run has finished" if not result.get("isError") else "the run ended with an error result"
            )
            self._end(running, "completed", text, result=result)
        await self._finish(running, keeper)

    def _end(
        self, running: RunningTask, status: Any, message: str, *, result: Any = None, error: Any = None
    ) -> None:
        record = running.record
        record.status, record.message, record.updated = status, message, time.time()
        record.result, record.error, record.input_requests = result, error, None
        for question in running.questions.values():
            if not question.answer.done():
                question.answer.cancel()

    async def _finish(self, running: RunningTask, keeper: asyncio.Task[None]) -> None:
        """Store the outcome (a stopping server still does), then tell the waiting."""
        keeper.cancel()
        with anyio.CancelScope(shield=True):
            try:
                await self.store.save_task(running.record, 0)
            except StoreError as err:  # kept in memory: this server still answers with the outcome
                log.error("task %s: its outcome could not be stored: %s", running.record.task_id, err)
            else:
                self._running.pop(running.record.task_id, None)
            running.wake()
            await self._tell(running)

    async def _keep_alive(self, running: RunningTask) -> None:
        """Mark the task alive in the store, and stop it when a cancel reached another server."""
        while True:
            await asyncio.sleep(self.alive_seconds / 3)
            try:
                cancel = await self.store.touch_task(running.record.task_id, self.holder, self.alive_seconds)
            except StoreError as err:
                log.warning("task %s could not be marked alive: %s", running.record.task_id, err)
                continue
            if cancel and running.job is not None and not running.cancelling:
                running.cancelling = CANCELLED_BY_CLIENT
                running.job.cancel()

    async def _tell(self, running: RunningTask) -> None:
        if running.listener is not None:
            try:
                await running.listener(replace(running.record))
            except Exception:  # the client has gone; it can still poll
                log.debug("task status notification not delivered", exc_info=True)

    async def status(
        self, running: RunningTask, status: Any, message: str | None, input_requests: Any = None
    ) -> None:
        """A live task's status changed (input wanted, or working again)."""
        record = running.record
        if record.terminal:
            return
        record.status, record.updated, record.input_requests = status, time.time(), input_requests
        if message is not None:
            record.message = message
        try:
            await self.store.save_task(record, self.alive_seconds)
        except StoreError as err:
            log.warning("task %s: status not stored: %s", record.task_id, err)
        running.wake()
        await self._tell(running)

    async def ask(self, running: RunningTask, method: str, params: dict[str, Any], what: str) -> Any:
        """Ask the client for something (`method` with wire `params`) and wait for the answer:
        the task is input_required until it comes (through tasks/result or tasks/update)."""
        running.asked += 1
        key = f"{method.split('/')[0]}-{running.asked}"  # unique over the task's life, as both eras want
        question = Question(key, method, params, asyncio.get_running_loop().create_future())
        running.questions[key] = question
        running.on_question.set()
        await self.status(running, "input_required", f"waiting for the client: {what}", _outstanding(running))
        try:
            return await question.answer
        finally:
            running.questions.pop(key, None)
            if running.questions:
                await self.status(running, "input_required", None, _outstanding(running))
            else:
                await self.status(running, "working", "the client answered; the run goes on")

    def progress(self, running: RunningTask, message: str) -> None:
        """What the run is doing: the status message of the next tasks/get (not stored each time)."""
        running.record.message, running.record.updated = message, time.time()

    # -- what clients ask ----------------------------------------------------------------------

    async def get(self, task_id: str, owner: str | None) -> TaskRecord:
        running = self._running.get(task_id)
        if running is not None:
            record = running.record
        else:
            try:
                found = await self.store.load_task(task_id)
            except StoreError as err:
                raise MCPError(INTERNAL_ERROR, str(err)) from None
            if found is None:
                raise UnknownTask(task_id)
            record = found
            if not record.alive and not record.terminal:
                record = await self._died(record)
        if record.owner is not None and record.owner != owner:
            raise UnknownTask(task_id)
        return replace(record)

    async def _died(self, record: TaskRecord) -> TaskRecord:
        """A task its server stopped marking alive: that server died while it ran."""
        record.status, record.updated = "failed", time.time()
        record.message = (
            f"the server running this task ({record.holder}) stopped before it finished; "
            "nothing of the run was kept, the process is as it was before it"
        )
        record.error = {"code": INTERNAL_ERROR, "message": record.message}
        record.input_requests = None
        try:
            await self.store.save_task(record, 0)
        except StoreError as err:
            log.warning("task %s: failure not stored: %s", record.task_id, err)
        return record

    def running(self, task_id: str) -> RunningTask | None:
        return self._running.get(task_id)

    async def wait(self, task_id: str, owner: str | None, deliver: Deliver | None) -> TaskRecord:
        """Wait until the task ends (tasks/result); questions it asks meanwhile go to `deliver`."""
        record = await self.get(task_id, owner)
        delivering: set[asyncio.Task[None]] = set()
        try:
            while not record.terminal:
                running = self._running.get(task_id)
                if running is None:  # another server runs it: poll the store
                    await asyncio.sleep(POLL_INTERVAL_MS / 1000)
                    record = await self.get(task_id, owner)
                    continue
                changed = running.changed
                if deliver is not None:
                    for question in list(running.questions.values()):
                        if not question.sent:
                            question.sent = True
                            job = asyncio.create_task(_deliver(deliver, question))
                            delivering.add(job)
                            job.add_done_callback(delivering.discard)
                    running.on_question.clear()
                    asking = asyncio.create_task(running.on_question.wait())
                    waiting = asyncio.create_task(changed.wait())
                    try:
                        await asyncio.wait({asking, waiting}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        asking.cancel()
                        waiting.cancel()
                else:
                    await changed.wait()
                record = await self.get(task_id, owner)
        finally:
            for job in delivering:
                job.cancel()
        return record

    async def cancel(self, task_id: str, owner: str | None) -> TaskRecord:
        """Stop the task and wait until it has stopped (its history rolled back)."""
        record = await self.get(task_id, owner)
        if record.terminal:
            raise MCPError(
                INVALID_PARAMS, f"task '{task_id}' has already {_ended(record)}; it can not be cancelled"
            )
        running = self._running.get(task_id)
        if running is not None and running.job is not None:
            await self._stop(running, CANCELLED_BY_CLIENT)
            return await self.get(task_id, owner)
        try:  # another server runs it: it sees the request the next time it marks the task alive
            await self.store.request_task_cancel(task_id)
        except StoreError as err:
            raise MCPError(INTERNAL_ERROR, str(err)) from None
        while not record.terminal and record.alive:
            await asyncio.sleep(POLL_INTERVAL_MS / 1000)
            record = await self.get(task_id, owner)
        return record

    async def abandon(self, owner: str) -> None:
        """`owner` (a session) has ended: nobody can ever collect its tasks, so stop them."""
        reason = "the session that started it ended; the process is as it was before the run"
        mine = [r for r in self._running.values() if r.record.owner == owner and r.job is not None]
        for running in mine:
            await self._stop(running, reason)

    async def _stop(self, running: RunningTask, reason: str) -> None:
        """Cancel a task this server runs and wait for its end (history rolled back, saved)."""
        assert running.job is not None
        running.cancelling = running.cancelling or reason
        running.job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(running.job)

    async def answer(self, task_id: str, owner: str | None, responses: dict[str, Any]) -> None:
        """Answers to questions a task asked (tasks/update); unknown or answered keys are ignored."""
        await self.get(task_id, owner)
        running = self._running.get(task_id)
        if running is None:
            raise MCPError(
                INVALID_PARAMS,
                f"task '{task_id}' is not running on this server; send tasks/update with the "
                "Mcp-Name header set to the task id, so the load balancer routes it to the server running it",
            )
        for key, value in responses.items():
            question = running.questions.get(key)
            if question is not None and not question.answer.done():
                question.answer.set_result(value)

    async def list(self, owner: str | None, cursor: str | None) -> tuple[list[TaskRecord], str | None]:
        if owner is None:
            return [], None
        before = _read_cursor(cursor) if cursor else None
        try:
            found = await self.store.owner_tasks(owner, LIST_PAGE + 1, before)
        except StoreError as err:
            raise MCPError(INTERNAL_ERROR, str(err)) from None
        page = [
            self._running[r.task_id].record if r.task_id in self._running else r for r in found[:LIST_PAGE]
        ]
        page = [replace(r) if r.alive or r.terminal else await self._died(r) for r in page]
        more = len(found) > LIST_PAGE
        return page, _cursor(page[-1]) if more and page else None

    async def aclose(self) -> None:
        """The server stops: running tasks end failed (and say so), their processes unchanged."""
        jobs = [r.job for r in self._running.values() if r.job is not None]
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(BaseException):
                await job


def _outstanding(running: RunningTask) -> dict[str, Any]:
    return {q.key: {"method": q.method, "params": q.params} for q in running.questions.values()}


def _ended(record: TaskRecord) -> str:
    return {"completed": "completed", "failed": "failed", "cancelled": "been cancelled"}[record.status]


async def _deliver(deliver: Deliver, question: Question) -> None:
    try:
        answer = await deliver(question)
    except asyncio.CancelledError:  # the collecting call went away: the next one asks again
        question.sent = False
        raise
    except Exception as err:
        if not question.answer.done():
            question.answer.set_exception(err)
        return
    if not question.answer.done():
        question.answer.set_result(answer)


def _cursor(record: TaskRecord) -> str:
    return base64.urlsafe_b64encode(f"{record.created!r}|{record.task_id}".encode()).decode()


def _read_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, task_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(created), task_id
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise MCPError(INVALID_PARAMS, "invalid cursor; list the tasks again from the start") from None
