"""`llmproc-mcp` over Streamable HTTP under abuse: malformed JSON-RPC, unknown methods,
oversized arguments, 1,000 sessions, clients that vanish mid-run, random cancellations.
The server keeps serving, and what it holds (tasks, file descriptors, children, processes,
sessions, memory) returns to where it was."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from fake_provider import FakeProviderServer
from helpers import SCRIPTED
from http_servers import TOOLBOX
from mcp_results import text
from server_thread import ServerThread

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
SESSIONS = 1000 if os.environ.get("LLMPROC_LONG_TESTS") else 40
"""1,000 sessions take about 100 s (client and server share this process): opt in to the long run."""
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "abuse", "version": "0"},
    },
}


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    root = tmp_path / "programs"
    root.mkdir()
    (root / "echo.toml").write_text(SCRIPTED)
    (root / "slow.toml").write_text(
        '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\n'
        + textwrap.dedent(
            f"""
            [mcp.servers.toolbox]
            command = {json.dumps(sys.executable)}
            args = [{json.dumps(str(TOOLBOX))}]
            [tools.mcp]
            toolbox = ["sleep"]
            """
        )
    )
    return root


@pytest.fixture
def slow_provider(monkeypatch) -> FakeProviderServer:
    """Every model turn takes 0.3 s; the model calls toolbox sleep once, then answers."""
    with FakeProviderServer(latency=0.3) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", fake.api_key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        yield fake


async def one_session(url: str, message: str = "hi", mode: str = "legacy") -> str:
    """A 2025-era session (initialize ... DELETE), or with mode="2026-07-28" sessionless calls."""
    return text(await _ask(url, "run_echo", message, mode))


async def test_malformed_requests_are_refused_and_the_server_keeps_serving(programs):
    with ServerThread(programs) as server:
        await one_session(server.url)  # warm up (a legacy session: its process goes with it)
        before = await server.steady()  # not while the ended session's tasks are still finishing
        async with httpx2.AsyncClient(timeout=10) as http:
            bad_bodies = [
                b"this is not JSON",
                b"{",
                b"[]",
                b"42",
                b'{"jsonrpc": "1.0", "id": 1, "method": "initialize"}',
                b'{"id": 1, "method": "tools/call", "params": {"name": "run_echo"}}',
                b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "tools/list"}',
                json.dumps({**INITIALIZE, "params": "not an object"}).encode(),
                b"\xff\xfe\x00garbage",
                b"x" * (6 * 1024 * 1024),  # over the 4 MB body limit
            ]
            for body in bad_bodies:
                response = await http.post(server.url, content=body, headers=HEADERS)
                assert 400 <= response.status_code < 500, (
                    body[:40],
                    response.status_code,
                    response.text[:200],
                )
            wrong_type = await http.post(
                server.url, content=b"{}", headers={**HEADERS, "content-type": "text/xml"}
            )
            assert 400 <= wrong_type.status_code < 500
            unknown_session = await http.post(
                server.url, json=INITIALIZE, headers={**HEADERS, "mcp-session-id": "no-such-session"}
            )
            assert unknown_session.status_code in (400, 404)
            opened = await http.post(server.url, json=INITIALIZE, headers=HEADERS)
            session = {**HEADERS, "mcp-session-id": opened.headers["mcp-session-id"]}
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await http.post(server.url, json=initialized, headers=session)).status_code == 202
            for n, method in enumerate(("tools/destroy", "no/such/method", "sampling/createMessage")):
                request = {"jsonrpc": "2.0", "id": 10 + n, "method": method, "params": {}}
                answer = await http.post(server.url, json=request, headers=session)
                error = _json_rpc_reply(answer.text)["error"]
                assert error["code"] == -32601, error  # method not found
            assert (await http.delete(server.url, headers=session)).status_code == 200

        async with Client(server.url, mode="legacy") as client:
            huge = "word " * 60_000  # 300 KB of arguments (and 600 KB back): under the limits, served
            reply = await client.call_tool("run_echo", {"message": huge})
            assert not reply.is_error and len(text(reply)) == len(huge)
            wrong = await client.call_tool("run_echo", {"message": {"nested": [1, 2]}})
            assert wrong.is_error and "message" in text(wrong)
            assert text(await client.call_tool("run_echo", {"message": "still fine"})) == "still fine"
        after = await server.settle(before)
        # a dozen one-off requests: a leak would be one descriptor per request; the test process
        # shares its descriptor table with everything else the suite left to the collector
        assert replace(after, fds=before.fds) == before and after.fds - before.fds <= 2, after


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_many_sessions_open_and_close_and_nothing_is_kept(programs, mode):
    """Legacy sessions end with DELETE, which frees their processes at once; sessionless
    callers' processes stay reachable by id until --idle-timeout."""
    with ServerThread(programs, "--idle-timeout", "4") as server:
        await asyncio.gather(*(one_session(server.url, mode=mode) for _ in range(20)))  # warm up
        before = await server.steady()
        objects = await asyncio.to_thread(_live_objects)
        limit = asyncio.Semaphore(25)

        async def session(n: int) -> str:
            async with limit:
                return await one_session(server.url, f"session {n}", mode)

        replies = await asyncio.gather(*(session(n) for n in range(SESSIONS)))
        assert replies == [f"session {n}" for n in range(SESSIONS)]
        after = await server.settle(before)
        assert after == before
        assert await asyncio.to_thread(_closed_connections_in_memory) == 0
        grown = await asyncio.to_thread(_live_objects) - objects
        # one session's process, transport and task group alone are hundreds of objects
        assert grown < 3000, f"{grown:,} more live objects after {SESSIONS:,} closed sessions"


async def test_clients_that_vanish_or_cancel_mid_run_leave_nothing_behind(programs, slow_provider):
    with ServerThread(programs, "--idle-timeout", "3", "--session-timeout", "3") as server:
        # warm up: imports, the shared provider client, the MCP servers of 30 concurrent runs
        await asyncio.gather(*(_ask(server.url, "run_slow", f"warm {n}", "legacy") for n in range(30)))
        # the baseline once the pool's idle connections are closed (aiohttp: 5 s keep-alive,
        # checked on a timer), so that every open descriptor after the abuse counts
        before = await server.steady(quiet=11)
        rng = random.Random(8)

        async def cancelled_run(n: int) -> None:
            async with Client(server.url, mode="legacy") as client:
                with pytest.raises(TimeoutError):
                    with anyio.fail_after(rng.uniform(0.05, 1.2)):
                        await client.call_tool("run_slow", {"message": f"cancel me {n}"})
                # the process is whole: a run was either cancelled away or completed
                listing = (await client.call_tool("list_processes", {})).structured_content
                for process in listing["processes"]:
                    assert process["messages"] % 2 == 0 or process["messages"] >= 4, process

        async def vanished_run(n: int) -> None:
            """A client whose connection goes away with no DELETE and no cancel notification."""
            http = httpx2.AsyncClient(timeout=30)
            transport = streamable_http_client(server.url, http_client=http, terminate_on_close=False)
            task = asyncio.create_task(_run_in(transport, f"vanish {n}"))
            await asyncio.sleep(rng.uniform(0.1, 1.0))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await http.aclose()

        await asyncio.gather(*(cancelled_run(n) for n in range(15)), *(vanished_run(n) for n in range(15)))
        assert text(await _ask(server.url, "run_echo", "after the abuse")) == "after the abuse"
        # vanished sessions end at --session-timeout, their processes at --idle-timeout
        after = await server.settle(before, timeout=30)
        assert after == before


def _closed_connections_in_memory() -> int:
    """uvicorn HTTP connections that have ended but are still held (by a keep-alive timer).
    type(), not isinstance(): a lazy proxy's __class__ could import modules and skew the count."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if _is_http_protocol(type(o)) and o.transport.is_closing())


def _is_http_protocol(kind: type) -> bool:
    """uvicorn's H11Protocol or HttpToolsProtocol, or llmproc-mcp's subclass of one."""
    return any(
        str(base.__module__).startswith("uvicorn.protocols.http") and base.__name__.endswith("Protocol")
        for base in kind.__mro__[:2]
    )


def _live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def _json_rpc_reply(body: str) -> dict:
    """The JSON-RPC message of a reply sent as JSON or as one SSE event."""
    if body.lstrip().startswith("{"):
        return json.loads(body)
    data = [line[5:].strip() for line in body.splitlines() if line.startswith("data:") and line[5:].strip()]
    return json.loads(data[-1])


async def _run_in(transport, message: str) -> None:
    async with Client(transport, mode="legacy") as client:
        await client.call_tool("run_slow", {"message": message})


async def _ask(url: str, tool: str, message: str, mode: str = "auto"):
    async with Client(url, mode=mode) as client:
        return await client.call_tool(tool, {"message": message})


async def test_an_sse_connection_that_closes_takes_its_processes_with_it(programs):
    async def connection(message: str) -> str:
        async with Client(sse_client(server.url)) as client:
            reply = text(await client.call_tool("run_echo", {"message": message}))
            assert (await asyncio.to_thread(server.holdings)).processes == 1
            return reply

    with ServerThread(programs, transport="sse") as server:
        await connection("warm up")  # the first SSE connection starts the SDK's shutdown watcher
        before = await server.steady()
        assert await connection("over sse") == "over sse"
        assert await server.settle(before) == before


@pytest.mark.parametrize("state", ["--no-state", None])  # in memory only; the default state file
async def test_past_max_live_processes_the_least_recently_used_idle_one_leaves(programs, state):
    extra = [state] if state else []
    with ServerThread(programs, "--max-live-processes", "3", *extra) as server:
        ids = []
        for n in range(5):  # sessionless calls: each starts a process
            reply = await _ask(server.url, "run_echo", f"call {n}", "2026-07-28")
            ids.append(reply.structured_content["process_id"])
        assert (await asyncio.to_thread(server.holdings)).processes == 3
        async with Client(server.url, mode="2026-07-28") as client:
            gone = await client.call_tool("run_echo", {"message": "again", "process_id": ids[0]})
            if state:
                assert gone.is_error and f"unknown process '{ids[0]}'" in text(gone)
            else:  # it left memory for the disk, and comes back from it
                assert not gone.is_error and gone.structured_content["process_id"] == ids[0]
            kept = await client.call_tool("run_echo", {"message": "again", "process_id": ids[4]})
            assert not kept.is_error and kept.structured_content["process_id"] == ids[4]


async def test_at_max_live_processes_with_every_one_running_a_new_call_is_told_to_wait(
    programs, slow_provider
):
    with ServerThread(programs, "--max-live-processes", "2") as server:
        running = [
            asyncio.create_task(_ask(server.url, "run_slow", f"busy {n}", "2026-07-28")) for n in range(2)
        ]
        while (await asyncio.to_thread(server.holdings)).processes < 2:
            await asyncio.sleep(0.02)
        refused = await _ask(server.url, "run_echo", "one more", "2026-07-28")
        assert refused.is_error
        assert text(refused) == (
            "Error executing tool run_echo: the server is running 2 processes, its limit "
            "(--max-live-processes); try again when some have finished"
        )
        assert all(not r.is_error for r in await asyncio.gather(*running))
        served = await _ask(server.url, "run_echo", "now there is room", "2026-07-28")  # an idle one leaves
        assert text(served) == "now there is room"
        assert (await asyncio.to_thread(server.holdings)).processes == 2
