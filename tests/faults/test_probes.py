"""What an attacker's probes found, each replayed over a real transport: identities taken from
headers, callers without a session filling the server, unanswered sampling rounds, special
files where programs or tool paths are expected, hostile text, and a shared state file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from helpers import COUNTER, HOST_MODEL, SCRIPTED, llmproc_mcp, write_programs
from http_servers import serve_llmproc
from mcp_results import text
from server_thread import ServerThread

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    return write_programs(
        tmp_path / "programs", {"echo.toml": SCRIPTED, "counter.toml": COUNTER, "host.toml": HOST_MODEL}
    )


async def legacy_session_id(url: str) -> tuple[str, str]:
    """Open a 2025-era session by hand and run one message in it: (session id, process id)."""
    async with httpx2.AsyncClient(timeout=30) as http:
        opened = await http.post(url, headers=ACCEPT, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "probe", "version": "0"}},
        })  # fmt: skip
        session = opened.headers["mcp-session-id"]
        headers = {**ACCEPT, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        await http.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        called = await http.post(url, headers=headers, json={
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "run_counter", "arguments": {"message": "mine"}},
        })  # fmt: skip
        assert '"one' in called.text, called.text
        process_id = called.text.split('"process_id":"', 1)[1].split('"', 1)[0]
        return session, process_id


async def test_a_2026_request_carrying_a_sessions_header_is_not_that_session(programs):
    """The header is the caller's own choice: it must not list or continue that session's processes."""
    with ServerThread(programs) as server:
        session, process_id = await legacy_session_id(server.url)
        for header in (session, "made-up-session"):
            async with (
                httpx2.AsyncClient(headers={"mcp-session-id": header}, timeout=30) as http,
                Client(streamable_http_client(server.url, http_client=http), mode="2026-07-28") as client,
            ):
                listing = (await client.call_tool("list_processes", {})).structured_content
                assert listing["processes"] == []
                reply = await client.call_tool("run_counter", {"message": "not yours"})
                assert text(reply) == "one"  # a new process, not the session's (which would say "two")
                assert reply.structured_content["process_id"] != process_id
                again = await client.call_tool("run_counter", {"message": "again"})
                assert text(again) == "one"  # and the made-up header gives no lasting identity


async def test_sessionless_spawns_are_capped_and_never_push_out_a_sessions_process(programs):
    with ServerThread(programs, "--max-live-processes", "5", "--max-sessionless-processes", "3") as server:
        async with Client(server.url, mode="legacy") as owned:
            assert text(await owned.call_tool("run_counter", {"message": "a"})) == "one"
            for n in range(12):
                async with Client(server.url, mode="2026-07-28") as stranger:
                    spawned = await stranger.call_tool("spawn", {"program": "echo", "message": f"s{n}"})
                    assert not spawned.is_error, text(spawned)
            held = server.call(lambda: _counts(server.server.table))
            assert held == (1, 3)  # the session's one process, and at most 3 without a session
            assert text(await owned.call_tool("run_counter", {"message": "b"})) == "two"  # still there


async def _counts(table) -> tuple[int, int]:
    handles = table.handles()
    return sum(h.owner is not None for h in handles), sum(h.owner is None for h in handles)


async def test_unanswered_sampling_rounds_can_not_lock_the_server(programs):
    """Each run waiting for a client's sampling answer holds a live process: bounded in all."""
    never = anyio.Event()
    asked = 0

    async def sample(context, params):
        nonlocal asked
        asked += 1
        await never.wait()

    with ServerThread(programs, "--max-live-processes", "5") as server:
        async with anyio.create_task_group() as waiting:
            for _ in range(2):  # half of --max-live-processes may wait
                client = Client(server.url, mode="2026-07-28", sampling_callback=sample)
                waiting.start_soon(_call_in, client, "run_host")
            with anyio.fail_after(60):
                while asked < 2:
                    await anyio.sleep(0.05)
            async with Client(server.url, mode="2026-07-28", sampling_callback=sample) as third:
                refused = await third.call_tool("run_host", {"message": "me too"})
            assert refused.is_error
            assert "2 runs are waiting for sampling answers, the most this server keeps" in text(refused)
            served = await _ask(server.url, "run_echo", "still serving")
            assert text(served) == "still serving"
            waiting.cancel_scope.cancel()
        never.set()


async def _call_in(client: Client, tool: str) -> None:
    async with client:
        await client.call_tool(tool, {"message": "think for me"})


async def _ask(url: str, tool: str, message: str):
    async with Client(url, mode="2026-07-28") as client:
        return await client.call_tool(tool, {"message": message})


async def test_a_fifo_among_the_programs_is_left_out_at_start_and_on_reload(programs):
    """Opening a FIFO blocks until a writer comes: at start the server never listened, and a
    reload froze its event loop."""
    os.mkfifo(programs / "trap.toml")
    async with Client(llmproc_mcp(programs, "--reload-interval", "0.2")) as client:
        listing = (await client.call_tool("list_processes", {})).structured_content
        assert "program file" in listing["unavailable_programs"]["trap.toml"]
        assert "is a named pipe, not a regular file" in listing["unavailable_programs"]["trap.toml"]
        os.mkfifo(programs / "later.toml")
        (programs / "fresh.toml").write_text(SCRIPTED)  # a change the reload publishes
        with anyio.fail_after(60):
            while (
                "fresh" not in (await client.call_tool("list_processes", {})).structured_content["programs"]
            ):
                await anyio.sleep(0.1)
        assert text(await client.call_tool("run_fresh", {"message": "served"})) == "served"


async def test_read_file_of_a_fifo_is_an_error_result_at_once(programs, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    os.mkfifo(files / "pipe")
    (programs / "reader.toml").write_text(
        SCRIPTED + f'[tools]\nbuiltin = ["read_file"]\nroots = ["{files}"]\n'
        '[scripted]\nreplies = [{tool_calls = [{name = "read_file", arguments = {path = "pipe"}}]}, "read"]\n'
    )
    async with Client(llmproc_mcp(programs)) as client:
        for _ in range(8):  # more than the hung threads that once stopped the server
            result = await client.call_tool("spawn", {"program": "reader", "message": "read the pipe"})
            assert result.structured_content["tool_calls"][0]["result"] == (
                "'pipe' is not a regular file (a named pipe); read_file reads files only"
            )
        assert text(await client.call_tool("run_echo", {"message": "alive"})) == "alive"


async def test_a_lone_surrogate_is_refused_and_nothing_is_lost(programs, tmp_path):
    """Valid JSON, not Unicode: once it was answered as a success, and the turn (and every later
    one) silently failed to save."""
    state = tmp_path / "state.db"
    for url in serve_llmproc(programs, "streamable-http", "--state", str(state)):
        async with Client(url, mode="2026-07-28") as client:
            first = await client.call_tool("run_counter", {"message": "hello"})
            process_id = first.structured_content["process_id"]
        async with httpx2.AsyncClient(timeout=30) as http:
            body = (
                '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "run_counter", '
                f'"arguments": {{"message": "\\ud800 bad", "process_id": "{process_id}"}}, '
                '"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", '
                '"io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "0"}, '
                '"io.modelcontextprotocol/clientCapabilities": {}}}}'
            )
            headers = {**ACCEPT, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call",
                       "mcp-name": "run_counter"}  # fmt: skip
            refused = await http.post(url, content=body.encode(), headers=headers)
        assert '"isError":true' in refused.text.replace(" ", ""), refused.text
        assert "lone surrogate (U+D800) at character 0" in refused.text
    for url in serve_llmproc(programs, "streamable-http", "--state", str(state)):  # restarted
        async with Client(url, mode="2026-07-28") as client:
            later = await client.call_tool("run_counter", {"message": "next", "process_id": process_id})
            assert text(later) == "two"  # the refused message took no turn, and the first one was kept
    assert [m["role"] for m in _stored_messages(state, process_id)] == ["user", "assistant"] * 2


def _stored_messages(state: Path, process_id: str) -> list[dict]:
    import json

    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT body FROM messages WHERE process_id = ? ORDER BY seq", (process_id,))
        return [json.loads(body) for (body,) in rows]


async def test_a_turn_the_state_database_can_not_keep_is_an_error_and_is_undone(programs, tmp_path):
    """The lease is taken first, in a write: a locked file refuses the call before it runs."""
    state = tmp_path / "state.db"
    async with Client(llmproc_mcp(programs, "--state", str(state))) as client:
        first = await client.call_tool("run_counter", {"message": "a"})
        process_id = first.structured_content["process_id"]
        blocker = sqlite3.connect(state, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the file past the busy timeout
        try:
            failed = await client.call_tool("run_counter", {"message": "b"})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert failed.is_error
        assert text(failed).endswith(
            f"process '{process_id}' can not be used now: state database {state} failed: database is locked"
        )
        listing = (await client.call_tool("list_processes", {})).structured_content["processes"]
        assert [(p["turns"], p["messages"]) for p in listing] == [(1, 2)]
        # the scripted model answers by the turns in the history: the undone one left no trace
        assert text(await client.call_tool("run_counter", {"message": "c"})) == "two"
    assert [m["role"] for m in _stored_messages(state, process_id)] == ["user", "assistant"] * 2


async def test_two_servers_share_one_state_file_without_splicing_histories(programs, tmp_path):
    """Two servers on one file spliced each other's turns into one history; now each takes the
    process's lease for a turn, and one whose copy is older than the file loads it again."""
    state = tmp_path / "state.db"
    server = llmproc_mcp(programs, "--state", str(state))
    async with Client(server) as one, Client(server) as other:
        first = await one.call_tool("run_counter", {"message": "a"})
        process_id = first.structured_content["process_id"]
        assert text(first) == "one"
        arguments = {"message": "b", "process_id": process_id}
        assert text(await other.call_tool("run_counter", arguments)) == "two"  # from the file
        arguments = {"message": "c", "process_id": process_id}
        assert text(await one.call_tool("run_counter", arguments)) == "three"  # its copy was stale
        both = await asyncio.gather(*(
            client.call_tool("run_counter", {"message": m, "process_id": process_id})
            for client, m in ((one, "d1"), (other, "d2"))
        ))  # fmt: skip
        # one after the other on one history: the second saw four answers (the counter has no fifth)
        won, lost = sorted(both, key=lambda r: r.is_error)
        assert text(won) == "four" and lost.is_error and "no reply for model turn 5" in text(lost)
    assert [m["role"] for m in _stored_messages(state, process_id)] == ["user", "assistant"] * 4


async def test_a_thousand_programs_are_listed_a_page_at_a_time(tmp_path: Path):
    """1,001 programs made tools/list 1.7 MB: the SDK's own client failed on its 1 MB event
    limit, for call_tool too (it lists the tools to check results)."""
    for n in range(1001):
        (tmp_path / f"program_{n:04d}.toml").write_text(
            SCRIPTED + f'[prompt]\nsystem_prompt = "Program {n} answers questions about topic {n}."\n'
        )
    with ServerThread(tmp_path, "--reload-interval", "0") as server:
        async with Client(server.url, mode="legacy") as client:
            names, cursor, pages = [], None, 0
            while True:
                page = await client.list_tools(cursor=cursor)
                names += [tool.name for tool in page.tools]
                pages, cursor = pages + 1, page.next_cursor
                if cursor is None:
                    break
            assert pages == 11 and len(names) == len(set(names)) == 1005
            assert {"run_program_0000", "run_program_1000", "spawn", "list_processes"} <= set(names)
            reply = await client.call_tool("run_program_1000", {"message": "the last one"})
            assert text(reply) == "the last one"
            with pytest.raises(MCPError, match="invalid or expired cursor"):
                await client.list_tools(cursor="bm90IGEgdG9vbA==")  # "not a tool"
        async with Client(server.url, mode="2026-07-28") as modern:
            first = await modern.list_tools()
            assert len(first.tools) == 100 and first.next_cursor
