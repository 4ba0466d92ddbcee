"""Replicas behind nginx on one PostgreSQL store: any turn on any replica, and nothing lost when
a replica dies, stalls past its lease, or the database restarts.

The model is the fake provider, answering each request with the user messages it was sent
("c3 t1 | c3 t2"): a reply shows exactly which history the replica that served it had. A
message that says "hold" is held at the provider until the test opens the gate, so runs are
in flight for as long as a step needs, with no clock involved.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

import sdk_tasks
from fake_provider import FakeProviderServer
from helpers import CLAUDE, HOST_MODEL, wait_until, write_programs
from mcp_results import text
from postgres import Cluster, cluster, new_database
from replicas import Gate, deployment

CONVERSATIONS = 30


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    return write_programs(tmp_path / "programs", {"claude.toml": CLAUDE, "host.toml": HOST_MODEL})


@pytest.fixture
def gate(fake: FakeProviderServer) -> Iterator[Gate]:
    held = Gate(fake)
    held.open()
    yield held
    held.open()  # nothing stays held past the test


@pytest.fixture
def env(fake: FakeProviderServer) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.url}


def said(*messages: str) -> str:
    return " | ".join(messages)


async def turn(url: str, message: str, process_id: str | None = None) -> Any:
    arguments = {"message": message, **({"process_id": process_id} if process_id else {})}
    async with Client(url, mode="2026-07-28") as client:
        return await client.call_tool("run_claude", arguments)


async def stored_messages(url: str, process_id: str) -> list[tuple[str, str]]:
    """(role, text) of each stored message, in order."""
    import asyncpg

    db = await asyncpg.connect(url)
    try:
        import json

        length = await db.fetchval("SELECT length FROM llmproc_processes WHERE id = $1", process_id)
        rows = await db.fetch(
            "SELECT body FROM llmproc_messages WHERE process_id = $1 AND seq < $2 ORDER BY seq",
            process_id, length,
        )  # fmt: skip
    finally:
        await db.close()
    found = []
    for row in rows:
        body = json.loads(row["body"])
        found.append((body["role"], "".join(b.get("text", "") for b in body["content"])))
    return found


async def hold_a_turn(tasks: Any, gate: Gate, url: str, pid: str, outcome: list[Any]) -> None:
    """Start the turn "t2 hold" in `tasks`, and return once it is held at the provider (its
    answer goes to `outcome` when the gate opens)."""
    gate.close()

    async def held_turn() -> None:
        outcome.append(await turn(url, "t2 hold", pid))

    tasks.start_soon(held_turn)
    await wait_until(lambda: gate.held == 1, "the run to reach the provider")


async def start_conversations(url: str) -> list[str]:
    ids: list[str] = [""] * CONVERSATIONS

    async def first(c: int) -> None:
        result = await turn(url, f"c{c} t1")
        assert text(result) == said(f"c{c} t1"), text(result)
        ids[c] = result.structured_content["process_id"]

    async with anyio.create_task_group() as tasks:
        for c in range(CONVERSATIONS):
            tasks.start_soon(first, c)
    return ids


async def test_thirty_conversations_through_nginx_each_turn_on_any_replica(programs, env, gate, postgres_url):
    with deployment(programs, postgres_url, env) as deployed:
        ids = await start_conversations(deployed.url)

        async def more(c: int) -> None:
            for t in range(2, 5):
                result = await turn(deployed.url, f"c{c} t{t}", ids[c])
                assert text(result) == said(*(f"c{c} t{k}" for k in range(1, t + 1))), text(result)

        async with anyio.create_task_group() as tasks:
            for c in range(CONVERSATIONS):
                tasks.start_soon(more, c)
        for replica in deployed.replicas:  # each one served turns of conversations it had not seen
            log = replica.said()
            assert "restored from the state database" in log or "loaded again" in log, log
    for c, pid in enumerate(ids):
        expected = [(role, f"c{c} t{t}") for t in range(1, 5) for role in ("user", "assistant")]
        stored = await stored_messages(postgres_url, pid)
        assert [r for r, _ in stored] == [r for r, _ in expected]
        assert [m for r, m in stored if r == "user"] == [f"c{c} t{t}" for t in range(1, 5)]


async def test_with_session_affinity_2025_sessions_stay_put_and_2026_calls_still_spread(
    programs, env, gate, postgres_url
):
    """The README's nginx configuration: hash by Mcp-Session-Id; requests without one (every
    2026-07-28 request, a session's first) are spread round robin."""
    with deployment(programs, postgres_url, env, affinity=True) as deployed:

        async def session(c: int) -> None:
            async with Client(deployed.url, mode="legacy") as client:  # one 2025-era session
                for t in range(1, 5):
                    result = await client.call_tool("run_claude", {"message": f"s{c} t{t}"})
                    assert text(result).startswith(said(*(f"s{c} t{k}" for k in range(1, t + 1))))

        async with anyio.create_task_group() as tasks:
            for c in range(6):
                tasks.start_soon(session, c)
        ids = await start_conversations(deployed.url)  # 2026-07-28: any replica
        for c, pid in enumerate(ids):
            assert text(await turn(deployed.url, f"c{c} t2", pid)) == said(f"c{c} t1", f"c{c} t2")
        served = [r for r in deployed.replicas if "restored from the state database" in r.said()]
        assert len(served) >= 2, "2026-07-28 calls all went to one replica"


async def test_2026_tasks_are_answered_on_the_replica_that_runs_them(programs, env, gate, postgres_url):
    """A task waiting for input (an mcp_sampling turn) lives in one replica's memory: its
    tasks/update must reach that replica. The README's nginx map routes tasks/* by Mcp-Name,
    the task id, which starts with the replica's name; tasks/get may land anywhere."""
    import mcp_types as types
    from mcp.client.streamable_http import streamable_http_client

    async def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
        asked = params["messages"][-1]["content"]["text"]
        return {"role": "assistant", "content": {"type": "text", "text": f"host: {asked}"}, "model": "host"}

    with deployment(programs, postgres_url, env, affinity=True) as deployed:
        client = Client(
            streamable_http_client(deployed.url), extensions=[sdk_tasks.Tasks()],
            sampling_callback=lambda *_: None, sampling_capabilities=types.SamplingCapability(),
        )  # fmt: skip
        async with client:
            created = [await sdk_tasks.start(client, "run_host", {"message": f"q{n}"}) for n in range(6)]
            assert len({c.task_id.split(".")[0] for c in created}) >= 2  # spread over replicas
            done = [await sdk_tasks.settle(client.session, c.task_id, answer) for c in created]
    assert [d["status"] for d in done] == ["completed"] * 6, done
    assert [d["result"]["structuredContent"]["text"] for d in done] == [f"host: q{n}" for n in range(6)]


async def test_kill_9_of_a_replica_with_runs_in_flight_loses_no_acknowledged_turn(
    programs, env, gate, postgres_url
):
    with deployment(programs, postgres_url, env, "--lease-seconds", "3") as deployed:
        ids = await start_conversations(deployed.url)
        gate.close()
        answered: dict[int, Any] = {}

        async def second(c: int) -> None:
            try:
                answered[c] = await turn(deployed.url, f"c{c} t2 hold", ids[c])
            except Exception as err:  # the replica died under it: nginx answers 502
                answered[c] = err

        async with anyio.create_task_group() as tasks:
            for c in range(CONVERSATIONS):
                tasks.start_soon(second, c)
            await wait_until(lambda: gate.held == CONVERSATIONS, "every run to reach the provider")
            deployed.replicas[0].kill()
            gate.open()
        acknowledged = {c for c, r in answered.items() if not isinstance(r, Exception) and not r.is_error}
        for c in acknowledged:
            assert text(answered[c]) == said(f"c{c} t1", f"c{c} t2 hold")
        assert 0 < len(acknowledged) < CONVERSATIONS  # the dead replica had some of them

        async def third(c: int) -> None:  # every conversation goes on, on the replicas left
            before = [f"c{c} t1", *([f"c{c} t2 hold"] if c in acknowledged else [])]
            result = await turn(deployed.url, f"c{c} t3", ids[c])
            assert text(result) == said(*before, f"c{c} t3"), text(result)

        async with anyio.create_task_group() as tasks:
            for c in range(CONVERSATIONS):
                tasks.start_soon(third, c)
    for c, pid in enumerate(ids):
        users = [m for r, m in await stored_messages(postgres_url, pid) if r == "user"]
        assert users == [f"c{c} t1", *([f"c{c} t2 hold"] if c in acknowledged else []), f"c{c} t3"]


async def test_a_replica_stopped_past_its_lease_can_not_commit_when_it_resumes(
    programs, env, gate, postgres_url
):
    with deployment(programs, postgres_url, env, "--lease-seconds", "2", replicas=2) as deployed:
        stalled, other = deployed.replicas
        pid = (await turn(stalled.url, "t1")).structured_content["process_id"]
        outcome: list[Any] = []
        async with anyio.create_task_group() as tasks:
            await hold_a_turn(tasks, gate, stalled.url, pid, outcome)
            stalled.signal(signal.SIGSTOP)  # paused with the lease: it expires, and is taken over
            taken_over = await turn(other.url, "t3", pid)
            assert text(taken_over) == said("t1", "t3")
            stalled.signal(signal.SIGCONT)
            gate.open()
        (late,) = outcome
        assert late.is_error and "was taken over by another server" in text(late), text(late)
        assert text(await turn(other.url, "t4", pid)) == said("t1", "t3", "t4")
        assert text(await turn(stalled.url, "t5", pid)) == said("t1", "t3", "t4", "t5")  # reloaded
        assert "its lease expired before it was renewed" in stalled.said()
    users = [m for r, m in await stored_messages(postgres_url, pid) if r == "user"]
    assert users == ["t1", "t3", "t4", "t5"]


async def test_two_replicas_racing_for_one_process_take_turns_or_say_busy(programs, env, gate, postgres_url):
    with deployment(programs, postgres_url, env, "--lease-wait", "1", replicas=2) as deployed:
        first, second = deployed.replicas
        pid = (await turn(first.url, "t1")).structured_content["process_id"]
        outcome: list[Any] = []
        async with anyio.create_task_group() as tasks:
            await hold_a_turn(tasks, gate, first.url, pid, outcome)
            busy = await turn(second.url, "t3", pid)
            assert busy.is_error
            assert f"process '{pid}' is busy: another server (" in text(busy)
            assert "did not finish within 1 s; try again later" in text(busy)
            gate.open()
        assert text(outcome[0]) == said("t1", "t2 hold")
        assert text(await turn(second.url, "t4", pid)) == said("t1", "t2 hold", "t4")
    users = [m for r, m in await stored_messages(postgres_url, pid) if r == "user"]
    assert users == ["t1", "t2 hold", "t4"]


@pytest.fixture
def restartable() -> Iterator[Cluster]:
    with cluster() as own:  # its own: this test stops it
        yield own


async def test_postgresql_restarted_mid_run_fails_calls_clearly_and_loses_nothing(
    programs, env, gate, restartable
):
    url = new_database(restartable.url)
    with deployment(programs, url, env, replicas=2) as deployed:
        pid = (await turn(deployed.url, "t1")).structured_content["process_id"]
        outcome: list[Any] = []
        async with anyio.create_task_group() as tasks:
            await hold_a_turn(tasks, gate, deployed.url, pid, outcome)
            await anyio.to_thread.run_sync(restartable.stop)
            gate.open()
        (lost,) = outcome
        assert lost.is_error and "could not be saved to the state database" in text(lost)
        assert "the conversation is as it was before this message" in text(lost)
        down = await turn(deployed.url, "t3", pid)
        assert down.is_error and "state database postgresql://llmproc:***@127.0.0.1" in text(down)
        assert "secret" not in text(down)
        await anyio.to_thread.run_sync(restartable.start)
        for _ in range(2):  # each replica, round robin: both work again
            result = await turn(deployed.url, "t4", pid)
            assert not result.is_error, text(result)
        assert text(result).startswith(said("t1", "t4"))
    users = [m for r, m in await stored_messages(url, pid) if r == "user"]
    assert users == ["t1", "t4", "t4"]
