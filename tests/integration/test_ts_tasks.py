"""MCP Tasks with the official TypeScript SDK's client (`experimental.tasks`, 2025-11-25 form)
over Streamable HTTP: start ten runs, disconnect, reconnect, and collect all ten; a run streamed
to its end; a cancel mid-run. Runs are held at the fake provider (an event gate, no clocks)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import CLAUDE, COUNTER, wait_until, write_programs
from http_servers import serve_llmproc
from integration.conftest import NODE_DIR, node_package_bin
from replicas import Gate

TOKEN = "tasks-token"


@pytest.fixture
def gate(anthropic_env: Any) -> Iterator[Gate]:
    held = Gate(anthropic_env)
    yield held
    held.open()


@pytest.fixture
def url(tmp_path: Path, gate: Gate) -> Iterator[str]:
    """After `gate`: the server inherits the fake provider's variables."""
    programs = write_programs(tmp_path / "programs", {"held.toml": CLAUDE, "counter.toml": COUNTER})
    yield from serve_llmproc(programs, "streamable-http", "--no-state", "--auth-token", TOKEN)


@pytest.fixture(scope="module")
def ts_tasks(node: str) -> list[str]:
    node_package_bin("@modelcontextprotocol/sdk", "package.json")
    return [node, str(NODE_DIR / "ts_tasks.mjs")]


async def tasks_client(ts_tasks: list[str], mode: str, url: str, *rest: str) -> dict[str, Any]:
    done = await asyncio.to_thread(
        subprocess.run, [*ts_tasks, mode, url, TOKEN, *rest], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


async def test_ten_runs_started_then_collected_after_a_reconnect(ts_tasks: list[str], url: str, gate: Gate):
    started = await tasks_client(ts_tasks, "start", url, "held", "10")
    assert started["capabilities"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    optional = {"taskSupport": "optional"}
    assert started["execution"] == {"spawn": optional, "run_held": optional, "run_counter": optional}
    created = started["created"]
    assert len(created) == 10 and {c["type"] for c in created} == {"taskCreated"}
    assert {c["status"] for c in created} == {"working"}
    assert len({c["taskId"] for c in created}) == 10
    await wait_until(lambda: gate.held == 10, "all ten runs to reach the provider", timeout=120)
    gate.open()  # the first client has gone; the runs go on without it

    collected = await tasks_client(ts_tasks, "collect", url)
    assert {t["taskId"] for t in collected["listed"]} == {c["taskId"] for c in created}
    texts = {collected["results"][c["taskId"]]["text"] for c in created}
    assert texts == {f"hold {i}" for i in range(10)}
    assert not any(r["isError"] for r in collected["results"].values())


async def test_a_run_streamed_through_its_task_to_the_end(ts_tasks: list[str], url: str):
    seen = (await tasks_client(ts_tasks, "stream", url, "counter"))["seen"]
    assert seen[0] == {"type": "taskCreated", "status": "working"}
    assert seen[-2] == {"type": "taskStatus", "status": "completed"}
    assert seen[-1] == {"type": "result", "text": "one"}


async def test_a_task_cancelled_mid_run_says_so(ts_tasks: list[str], url: str, gate: Gate):
    (created,) = (await tasks_client(ts_tasks, "start", url, "held", "1"))["created"]
    await wait_until(lambda: gate.held == 1, "the run to reach the provider", timeout=120)
    cancelled = await tasks_client(ts_tasks, "cancel", url, created["taskId"])
    assert cancelled["cancelled"] == {"status": "cancelled"}
    assert cancelled["after"] == {"status": "cancelled"}
