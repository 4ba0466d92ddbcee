"""`llmproc-mcp --state`: conversations outlive restarts and crashes, turn by turn."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from fake_provider import Fault, Turn
from helpers import CLAUDE, COUNTER, llmproc_mcp, wait_until, write_programs
from http_servers import free_port, serve_process
from llmproc.store import SqliteStore, StoreError, TurnRecord
from mcp_results import text


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    return write_programs(tmp_path / "programs", {"counter.toml": COUNTER, "claude.toml": CLAUDE})


def stdio(programs: Path, state: Path, *extra: str) -> StdioServerParameters:
    return llmproc_mcp(programs, "--state", str(state), *extra)


async def test_a_stdio_conversation_continues_after_the_server_restarts(programs, tmp_path):
    state = tmp_path / "state.db"
    async with Client(stdio(programs, state)) as client:
        first = await client.call_tool("run_counter", {"message": "a"})
        assert text(await client.call_tool("run_counter", {"message": "b"})) == "two"
    pid = first.structured_content["process_id"]
    async with Client(stdio(programs, state)) as client:  # a new server process on the same file
        again = await client.call_tool("run_counter", {"message": "c"})  # the default conversation
        assert (text(again), again.structured_content["process_id"]) == ("three", pid)
        listed = (await client.call_tool("list_processes", {})).structured_content["processes"]
        assert [(p["process_id"], p["turns"], p["messages"]) for p in listed] == [(pid, 3, 6)]


async def test_idle_processes_leave_memory_but_not_the_disk(programs, tmp_path):
    log = tmp_path / "server.log"
    params = stdio(programs, tmp_path / "state.db", "--idle-timeout", "0.3", "--log-level", "INFO")
    with log.open("w") as errors:
        async with Client(stdio_client(params, errlog=errors)) as client:
            first = await client.call_tool("run_counter", {"message": "a"})
            gone = f"process {first.structured_content['process_id']} left memory"
            await wait_until(lambda: gone in log.read_text(), "the idle process to leave memory")
            listed = (await client.call_tool("list_processes", {})).structured_content["processes"]
            assert [p["process_id"] for p in listed] == [first.structured_content["process_id"]]  # from disk
            assert text(await client.call_tool("run_counter", {"message": "b"})) == "two"


async def test_reset_and_fork_are_kept(programs, tmp_path):
    state = tmp_path / "state.db"
    async with Client(stdio(programs, state)) as client:
        first = await client.call_tool("run_counter", {"message": "a"})
        pid = first.structured_content["process_id"]
        forked = (await client.call_tool("fork", {"process_id": pid})).structured_content["process_id"]
        await client.call_tool("reset", {"process_id": pid})
    async with Client(stdio(programs, state)) as client:
        assert text(await client.call_tool("run_counter", {"message": "x", "process_id": pid})) == "one"
        copy = await client.call_tool("run_counter", {"message": "y", "process_id": forked})
        assert text(copy) == "two"  # the fork kept the first turn


def http_server(programs: Path, state: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    command = [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--state", str(state)]
    return serve_process(
        [*command, "--transport", "streamable-http", "--port", str(port)], port, "streamable-http", env
    )


async def test_kill_9_mid_run_then_continue_by_process_id(programs, tmp_path, fake):
    env = {**os.environ, "ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.url}
    state = tmp_path / "state.db"
    fake.push(Turn(text="First answer."), Fault(hang=20))
    for url, server in http_server(programs, state, env):
        async with Client(url, mode="legacy") as client:
            seen = await client.call_tool("run_claude", {"message": "first question"})
            pid = seen.structured_content["process_id"]
            async with anyio.create_task_group() as tasks:

                async def doomed() -> None:
                    with contextlib.suppress(Exception):  # the server dies under it
                        await client.call_tool("run_claude", {"message": "question lost in the crash"})

                tasks.start_soon(doomed)
                while len(fake.requests) < 2:  # the second run is at the provider
                    await anyio.sleep(0.02)
                server.send_signal(signal.SIGKILL)
                server.wait(timeout=10)
                tasks.cancel_scope.cancel()
    fake.push(Turn(text="Second answer."))
    for url, _ in http_server(programs, state, env):
        async with Client(url, mode="legacy") as other_session:  # a new session: the id is the key
            result = await other_session.call_tool(
                "run_claude", {"message": "second question", "process_id": pid}
            )
            assert (text(result), result.structured_content["process_id"]) == ("Second answer.", pid)
    sent = fake.bodies("/v1/messages")[-1]["messages"]
    contents = [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in sent]
    assert contents == ["first question", "First answer.", "second question"]  # the lost turn left nothing


async def test_another_sessions_process_stays_unknown_while_the_server_runs(programs, tmp_path):
    port_env = dict(os.environ)
    for url, _ in http_server(programs, tmp_path / "state.db", port_env):
        async with Client(url, mode="legacy") as alice, Client(url, mode="legacy") as bob:
            pid = (await alice.call_tool("run_counter", {"message": "a"})).structured_content["process_id"]
            stolen = await bob.call_tool("run_counter", {"message": "b", "process_id": pid})
            assert stolen.is_error and text(stolen).endswith(f"unknown process '{pid}'")


WRITER = """
import asyncio, sys
from llmproc.store import SqliteStore, TurnRecord

async def main():
    store = SqliteStore(sys.argv[1])
    big = "x" * 200_000
    turn = 0
    while True:
        turn += 1
        user = {"id": f"msg-{2 * turn - 1}", "role": "user", "content": [{"type": "text", "text": big}]}
        count = [{"type": "text", "text": str(turn)}]
        reply = {"id": f"msg-{2 * turn}", "role": "assistant", "content": count}
        header = {"format": "llmproc-snapshot", "version": 1, "process_id": "p", "program": {}}
        record = TurnRecord(
            "p", "counter", None, "boot", turn, header, 2 * (turn - 1), [user, reply], {}, base=turn - 1
        )
        await store.commit(record)
        print(turn, flush=True)

asyncio.run(main())
"""


@pytest.mark.parametrize("delay", [0.0, 0.003, 0.011, 0.027, 0.05])
async def test_kill_9_during_a_write_leaves_whole_turns(tmp_path, delay):
    """A writer commits 200 KB turns back to back; kill -9 lands at varied points of a write."""
    state = tmp_path / "state.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(state)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    printed = [int(writer.stdout.readline()) for _ in range(3)]  # writing at full speed now
    time.sleep(delay)
    writer.send_signal(signal.SIGKILL)
    printed += [int(line) for line in writer.communicate(timeout=10)[0].split()]
    store = SqliteStore(state)  # opens clean: WAL recovery, quick_check ok
    stored = await store.load("p")
    await store.close()
    assert stored is not None and stored.document is not None
    messages = stored.document["messages"]
    assert stored.turns >= (printed[-1] if printed else 0)  # every acknowledged turn is there
    assert len(messages) == 2 * stored.turns  # and no half turn
    assert messages[-1]["content"][0]["text"] == str(stored.turns)


def run_server(programs: Path, state: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--state", str(state)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_a_file_that_is_not_a_database_is_refused_at_start(programs, tmp_path):
    state = tmp_path / "notes.txt"
    state.write_text("these are my notes, not a database\n" * 100)
    done = run_server(programs, state)
    assert done.returncode == 3
    assert done.stderr.strip() == (
        f"llmproc-mcp: error: state database {state} is not usable: file is not a database "
        "(is it an SQLite database?)"
    )
    assert state.read_text().startswith("these are my notes")  # untouched


async def test_a_damaged_database_is_refused_at_start(programs, tmp_path):
    state = tmp_path / "state.db"
    store = SqliteStore(state)
    for turn in range(1, 30):
        message = {"id": f"msg-{turn}", "role": "user", "content": [{"type": "text", "text": "y" * 5000}]}
        await store.commit(TurnRecord("p", "counter", None, "b", turn, {}, turn - 1, [message], {}, turn - 1))
    await store.close()
    data = bytearray(state.read_bytes())
    data[8192:40000] = b"Z" * (40000 - 8192)  # pages overwritten in the middle of the file
    state.write_bytes(bytes(data))
    done = run_server(programs, state)
    assert done.returncode == 3
    assert (
        "is damaged (database disk image is malformed); restore a backup or start a new file" in done.stderr
    )


def test_another_applications_database_is_refused(programs, tmp_path):
    state = tmp_path / "app.db"
    with sqlite3.connect(state) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    db.close()
    done = run_server(programs, state)
    assert done.returncode == 3
    assert "belongs to another application (tables: users); choose another --state path" in done.stderr


async def test_a_newer_database_is_refused(tmp_path):
    state = tmp_path / "state.db"
    await SqliteStore(state).close()
    with sqlite3.connect(state) as db:
        db.execute("UPDATE llmproc_meta SET value = '99' WHERE key = 'version'")
    db.close()
    with pytest.raises(StoreError, match="written by a newer llmproc"):
        SqliteStore(state)


def test_store_messages_are_the_snapshot_encoding(tmp_path):
    # the store and snapshots share one message encoding: a stored document restores as a snapshot
    from llmproc import LLMProcess

    program = tmp_path / "p.toml"
    program.write_text(COUNTER)
    process = LLMProcess.from_toml(program)
    process.run("hello")

    async def through_the_store() -> dict[str, Any]:
        from llmproc.store import Persisted

        store = SqliteStore(tmp_path / "s.db")
        persisted = Persisted()
        record = persisted.record(process, program="p", owner=None, boot="b", turns=1)
        await store.commit(record)
        stored = await store.load(process.id)
        await store.close()
        assert stored is not None and stored.document is not None
        return stored.document

    document = anyio.run(through_the_store)
    assert LLMProcess.restore(json.loads(json.dumps(document))).messages == process.messages
