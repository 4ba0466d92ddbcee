"""--workers N: one port served by N processes sharing the state store, under a supervisor."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from helpers import HOST_MODEL, write_programs
from http_servers import free_port
from mcp_results import text
from replicas import wait_for_port

ECHO = '[model]\nname = "s"\nprovider = "scripted"\n'
"""Echoes the last user message: what a run was told."""
COUNTER = ECHO + '[scripted]\nreplies = ["one", "two", "three", "four"]\nwhen_exhausted = "repeat_last"\n'


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    return write_programs(tmp_path / "programs", {"counter.toml": COUNTER})


def start(programs: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port, log = free_port(), tmp_path / "server.log"
    command = [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--transport",
               "streamable-http", "--port", str(port), "--log-level", "INFO", *extra]  # fmt: skip
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    wait_for_port(port, server, "llmproc-mcp --workers")
    return server, port, log


def workers_of(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children]


def stop(server: subprocess.Popen[bytes]) -> int:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    return server.wait(timeout=120)


async def converse(url: str, conversations: int = 12) -> None:
    async def one(c: int) -> None:
        process_id = None
        for expected in ("one", "two", "three"):
            async with Client(url, mode="2026-07-28") as client:  # a new connection: any worker
                arguments = {"message": f"c{c}", **({"process_id": process_id} if process_id else {})}
                result = await client.call_tool("run_counter", arguments)
            assert text(result) == expected, text(result)
            process_id = result.structured_content["process_id"]

    async with anyio.create_task_group() as tasks:
        for c in range(conversations):
            tasks.start_soon(one, c)


async def test_workers_share_one_port_and_every_conversation(programs, tmp_path):
    server, port, log = start(programs, tmp_path, "--workers", "3", "--state", str(tmp_path / "s.db"))
    try:
        assert f"serving 1 programs at http://127.0.0.1:{port}/mcp with 3 workers" in log.read_text()
        assert len(workers_of(server.pid)) == 3
        await converse(f"http://127.0.0.1:{port}/mcp")
        said = log.read_text()
        assert "restored from the state database" in said or "loaded again" in said  # crossed workers
    finally:
        assert stop(server) == 128 + signal.SIGTERM
    assert "Traceback" not in log.read_text()


async def test_a_worker_killed_is_replaced_and_a_killed_supervisor_takes_its_workers_along(
    programs, tmp_path
):
    server, port, log = start(programs, tmp_path, "--workers", "2")  # on the default state file
    try:
        first = workers_of(server.pid)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while "worker 0 ended" not in log.read_text() or len(workers_of(server.pid)) < 2:
            assert time.monotonic() < deadline, log.read_text()
            await anyio.sleep(0.05)
        assert first[0] not in workers_of(server.pid)
        await converse(f"http://127.0.0.1:{port}/mcp", conversations=4)
        workers = workers_of(server.pid)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=60)
        deadline = time.monotonic() + 120
        while any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            await anyio.sleep(0.05)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        stop(server)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; it waits only for its parent's wait


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--workers", "2", "--no-state"), "--workers 2 needs a state store the workers share: give --state"),
        (("--workers", "2", "--transport", "sse"), "--workers serves Streamable HTTP, not sse"),
        (("--workers", "0"), "--workers 0: give at least 1"),
    ],
)
def test_workers_say_what_they_need(programs, extra, message):
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--transport",
         "streamable-http", "--port", "0", *extra],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 3
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("llmproc-mcp: error: ") and message in line


async def test_a_2025_session_reaches_its_worker_whichever_worker_a_connection_lands_on(programs, tmp_path):
    """Each request on a connection of its own: the kernel picks any worker for each."""
    server, port, _log = start(programs, tmp_path, "--workers", "3")
    url = f"http://127.0.0.1:{port}/mcp"
    accept = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    initialize = {
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "probe", "version": "1"}},
    }  # fmt: skip

    async def post(body: dict, session: str | None = None) -> httpx2.Response:
        headers = {**accept, **({"mcp-session-id": session} if session else {})}
        async with httpx2.AsyncClient(timeout=120) as http:  # a new connection each time
            return await http.post(url, json=body, headers=headers)

    try:
        opened = await post(initialize)
        session = opened.headers["mcp-session-id"]
        assert re.fullmatch(r"w[0-2]\.[0-9a-f]+", session)
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await post(initialized, session)).status_code == 202
        replies = []
        for n in range(1, 13):
            call = {"jsonrpc": "2.0", "id": n, "method": "tools/call",
                    "params": {"name": "run_counter", "arguments": {"message": "count"}}}  # fmt: skip
            response = await post(call, session)
            assert response.status_code == 200, response.text
            replies.append(_result_text(response.text))
        assert replies[:4] == ["one", "two", "three", "four"]  # one conversation, the session's
        async with httpx2.AsyncClient(timeout=120) as http:
            ended = await http.delete(url, headers={**accept, "mcp-session-id": session})
        assert ended.status_code == 200
        ping = {"jsonrpc": "2.0", "id": 99, "method": "ping"}
        for _ in range(6):  # gone on every worker
            assert (await post(ping, session)).status_code == 404
    finally:
        stop(server)


def _result_text(body: str) -> str:
    """The text of a tools/call answer (JSON, or the last data line of an SSE stream)."""
    lines = [line[5:].strip() for line in body.splitlines() if line.startswith("data:")]
    message = json.loads(lines[-1] if lines else body)
    return message["result"]["content"][0]["text"].split("\n\n[process_id:")[0]


async def test_a_sampling_rounds_answer_reaches_the_worker_whose_run_waits_for_it(tmp_path):
    """A 2026-07-28 client answers each round with a retried call, on a new connection here."""
    import mcp_types as types

    programs = write_programs(tmp_path / "programs", {"host.toml": HOST_MODEL})
    server, port, _log = start(programs, tmp_path, "--workers", "3")

    async def sample(context, params):
        asked = params.messages[-1].content
        said = asked.text if hasattr(asked, "text") else asked[0].text
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=f"host says: {said}"),
            model="host-model", stop_reason="endTurn",
        )  # fmt: skip

    try:
        fresh = httpx2.Limits(max_keepalive_connections=0)  # every request on a connection of its own
        async with httpx2.AsyncClient(limits=fresh, timeout=120) as http:
            transport = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
            async with Client(transport, mode="2026-07-28", sampling_callback=sample) as client:
                for n in range(8):
                    result = await client.call_tool("run_host", {"message": f"round {n}"})
                    assert not result.is_error, text(result)
                    assert text(result).startswith(f"host says: round {n}")
    finally:
        stop(server)
