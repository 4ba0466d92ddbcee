"""Heartbeats: a host that gave a progress token hears from a long run at least every
--heartbeat seconds, even while the provider says nothing, so hosts that reset their idle timer
on progress keep waiting. Runs are held at the fake provider (an event gate)."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from helpers import CLAUDE, wait_until, write_programs
from http_servers import serve_llmproc
from raw_mcp import RawStdio
from replicas import Gate

BEAT = re.compile(r"waiting for the model \(turn 1\); (\d+) s into the run, 0 tokens in and 0 out so far")


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    return write_programs(tmp_path / "programs", {"held.toml": CLAUDE})


@pytest.fixture
def gate(anthropic_env: Any) -> Iterator[Gate]:
    held = Gate(anthropic_env)
    yield held
    held.open()


def raw_stdio(programs: Path, *extra: str) -> RawStdio:
    return RawStdio(
        sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--no-state", *extra
    )


def server(programs: Path, *extra: str) -> Any:
    return stdio_client(
        StdioServerParameters(
            command=sys.executable,
            args=["-m", "llmproc.cli.mcp", "--programs", str(programs), "--no-state", *extra],
            env=dict(os.environ),  # the SDK passes only a few variables on; the fake's are needed
        )
    )


async def test_a_thirty_second_run_beats_at_least_once_per_interval(programs: Path, gate: Gate):
    interval, run_for = 2.0, 30.0
    beats: list[tuple[float, float, str]] = []

    async def progress(step: float, total: float | None, message: str | None) -> None:
        beats.append((time.monotonic(), step, message or ""))

    async with Client(server(programs, "--heartbeat", str(interval))) as client:
        async with anyio.create_task_group() as group:
            outcome: dict[str, Any] = {}

            async def call() -> None:
                outcome["result"] = await client.call_tool(
                    "run_held", {"message": "hold on"}, progress_callback=progress
                )

            group.start_soon(call)
            await wait_until(lambda: gate.held == 1, "the run to reach the provider")
            held_at = time.monotonic()
            await anyio.sleep(run_for)  # the run's length, not a deadline: the provider is slow
            gate.open()
        elapsed = time.monotonic() - held_at
    result = outcome["result"]
    assert not result.is_error and result.structured_content["text"] == "hold on"
    heartbeats = [(at, step, text) for at, step, text in beats if BEAT.fullmatch(text)]
    # One per interval while the provider was silent; a busy machine may delay a beat a little,
    # so allow two fewer than the intervals that passed, never none.
    assert len(heartbeats) >= int(elapsed / interval) - 2, [text for _, _, text in beats]
    assert [step for _, step, _ in beats] == sorted({step for _, step, _ in beats})  # only grows
    seconds = [int(BEAT.fullmatch(text).group(1)) for _, _, text in heartbeats]  # type: ignore[union-attr]
    assert seconds == sorted(seconds) and seconds[-1] >= run_for - 2 * interval
    assert beats[-1][2].startswith("model turn 1 done (")  # and the end of the turn is reported too


async def test_no_heartbeat_without_a_progress_token_or_when_turned_off(programs: Path, gate: Gate):
    """A client that asked no progress gets none (it would be a protocol error), and
    --heartbeat 0 turns the timer off while model turns are still reported."""
    async with raw_stdio(programs, "--heartbeat", "0.2") as raw:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                group.start_soon(
                    raw.request, "tools/call", {"name": "run_held", "arguments": {"message": "hold quietly"}}
                )
                await wait_until(lambda: gate.held == 1, "the run to reach the provider")
                await anyio.sleep(1.0)  # five heartbeat intervals with no token: nothing may come
                gate.open()
        assert not [n for n in raw.notifications if n["method"] == "notifications/progress"]

    gate.close()
    beats: list[str] = []

    async def progress(step: float, total: float | None, message: str | None) -> None:
        beats.append(message or "")

    async with Client(server(programs, "--heartbeat", "0")) as client, anyio.create_task_group() as group:
        group.start_soon(
            lambda: client.call_tool("run_held", {"message": "hold again"}, progress_callback=progress)
        )
        await wait_until(lambda: gate.held == 2, "the second run to reach the provider")
        await anyio.sleep(1.0)
        gate.open()
    assert beats and not [b for b in beats if BEAT.fullmatch(b)]
    assert beats[-1].startswith("model turn 1 done (")


@pytest.fixture
def http_server(programs: Path, gate: Gate) -> Iterator[str]:
    """After `gate`: the server inherits the fake provider's variables."""
    yield from serve_llmproc(programs, "streamable-http", "--no-state", "--heartbeat", "0.3")


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_heartbeats_reach_a_client_over_streamable_http(http_server: str, gate: Gate, mode: str):
    beats: list[str] = []

    async def progress(step: float, total: float | None, message: str | None) -> None:
        beats.append(message or "")

    client = Client(streamable_http_client(http_server), mode=mode)
    async with client, anyio.create_task_group() as group:
        group.start_soon(
            lambda: client.call_tool("run_held", {"message": "hold there"}, progress_callback=progress)
        )
        await wait_until(
            lambda: sum(bool(BEAT.fullmatch(b)) for b in beats) >= 3, "three heartbeats", timeout=120
        )
        gate.open()
    assert beats[-1].startswith("model turn 1 done (")


async def test_a_task_says_what_it_is_waiting_for_in_its_status(programs: Path, gate: Gate):
    """A task's heartbeats become its status message, for clients that poll tasks/get."""
    async with raw_stdio(programs, "--heartbeat", "0.2") as raw:
        call = {"name": "run_held", "arguments": {"message": "hold the task"}, "task": {}}
        task_id = (await raw.request("tools/call", call))["task"]["taskId"]
        messages: list[str] = []
        for _ in range(6000):  # a generous outer bound; it ends at the first heartbeat seen
            task = await raw.request("tasks/get", {"taskId": task_id})
            messages.append(task.get("statusMessage", ""))
            if BEAT.fullmatch(messages[-1]):
                break
            await anyio.sleep(0.05)
        assert BEAT.fullmatch(messages[-1]), messages[-5:]
        assert task["status"] == "working"
        gate.open()
        result = await raw.request("tasks/result", {"taskId": task_id})
        assert result["structuredContent"]["text"] == "hold the task"
