"""The task store contract (task_store.py), one suite for SQLite, PostgreSQL and memory."""

from __future__ import annotations

import time
from typing import Any

import pytest

from llmproc.task_store import MemoryTaskStore, TaskRecord


@pytest.fixture(params=["sqlite", "postgres", "memory"])
async def tasks(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "memory":
        yield MemoryTaskStore()
        return
    from stores.conftest import Stores  # the process stores keep tasks too

    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    opened = Stores(request.param, tmp_path, url)
    yield await opened.open()
    await opened.close_all()


def task(task_id: str = "t1", **fields: Any) -> TaskRecord:
    return TaskRecord(
        task_id, fields.pop("owner", "alice"), "run_slow", "2025-11-25", holder="server A", **fields
    )


async def test_a_task_reads_back_as_saved_and_its_outcome_replaces_it(tasks):
    await tasks.save_task(task(message="the run has started"), 30)
    found = await tasks.load_task("t1")
    assert (found.owner, found.tool, found.era, found.status, found.message) == (
        "alice", "run_slow", "2025-11-25", "working", "the run has started",
    )  # fmt: skip
    assert found.alive and not found.terminal and not found.cancel_requested
    result = {"content": [{"type": "text", "text": "done \u2603 \x00"}], "isError": False}
    await tasks.save_task(task(status="completed", message="finished", result=result), 0)
    found = await tasks.load_task("t1")
    assert (found.status, found.result, found.alive) == ("completed", result, True)  # ended: never "dead"
    assert await tasks.load_task("nobody") is None


async def test_a_running_task_not_marked_alive_reads_as_dead(tasks):
    await tasks.save_task(task(), 0)  # its server never marked it alive again
    assert not (await tasks.load_task("t1")).alive
    assert await tasks.touch_task("t1", "server B", 30) is None  # only its own server marks it
    assert await tasks.touch_task("t1", "server A", 30) is False
    assert (await tasks.load_task("t1")).alive


async def test_a_cancel_asked_elsewhere_reaches_the_server_running_it(tasks):
    await tasks.save_task(task(), 30)
    await tasks.request_task_cancel("t1")
    assert await tasks.touch_task("t1", "server A", 30) is True
    await tasks.save_task(task(status="cancelled"), 0)
    assert await tasks.touch_task("t1", "server A", 30) is None  # ended: nothing to mark


async def test_a_task_past_its_ttl_is_forgotten(tasks):
    await tasks.save_task(task("old", created=time.time() - 10, ttl_ms=1000, status="completed"), 0)
    await tasks.save_task(task("new", ttl_ms=60_000), 30)
    assert await tasks.load_task("old") is None
    assert [t.task_id for t in await tasks.owner_tasks("alice", 10, None)] == ["new"]


async def test_an_owners_tasks_come_newest_first_a_page_at_a_time(tasks):
    now = time.time()
    for n in range(5):
        await tasks.save_task(task(f"t{n}", created=now - 10 + n), 30)
    await tasks.save_task(task("bobs", owner="bob"), 30)
    first = await tasks.owner_tasks("alice", 2, None)
    assert [t.task_id for t in first] == ["t4", "t3"]
    last = first[-1]
    rest = await tasks.owner_tasks("alice", 10, (last.created, last.task_id))
    assert [t.task_id for t in rest] == ["t2", "t1", "t0"]
    assert [t.task_id for t in await tasks.owner_tasks("bob", 10, None)] == ["bobs"]
    assert await tasks.owner_tasks("carol", 10, None) == []
