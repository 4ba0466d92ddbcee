"""MCP Tasks over the real transports, in both protocol eras: 2025-11-25 as raw JSON-RPC (the
`mcp` SDK client has no API for it) and 2026-07-28 through the SDK client's extension hook.
Runs are held at the fake provider (an event gate, no clocks) for as long as a test needs."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

import sdk_tasks
from helpers import CLAUDE, COUNTER, HOST_MODEL, SCRIPTED, wait_until, write_programs
from http_servers import TOOLBOX, serve_llmproc
from raw_mcp import RawError, RawHttp, RawStdio
from replicas import Gate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    sleeper = SCRIPTED + textwrap.dedent(
        f"""
        [scripted]
        replies = [{{tool_calls = [{{name = "toolbox__sleep", arguments = {{seconds = 600}}}}]}}, "woke up"]
        [mcp.servers.toolbox]
        command = {json.dumps(sys.executable)}
        args = [{json.dumps(str(TOOLBOX))}]
        """
    )
    return write_programs(
        tmp_path / "programs",
        {"counter.toml": COUNTER, "held.toml": CLAUDE, "sleeper.toml": sleeper, "host.toml": HOST_MODEL},
    )


@pytest.fixture
def gate(anthropic_env: Any) -> Iterator[Gate]:
    held = Gate(anthropic_env)
    yield held
    held.open()


def stdio(programs: Path, *extra: str, **options: Any) -> RawStdio:
    return RawStdio(sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), *extra, **options)


def as_task(name: str, message: str, **task: Any) -> dict[str, Any]:
    return {"name": name, "arguments": {"message": message}, "task": task}


async def until_status(client: Any, task_id: str, *statuses: str) -> dict[str, Any]:
    """Poll tasks/get until the task is in one of `statuses` (a generous outer bound)."""
    for _ in range(6000):
        task = await client.request("tasks/get", {"taskId": task_id})
        if task["status"] in statuses:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never became {statuses}: {task}")


# -- 2025-11-25 ------------------------------------------------------------------------------------


async def test_a_run_called_as_a_task_answers_at_once_and_is_collected(programs: Path, gate: Gate):
    async with stdio(programs, "--no-state") as client:
        capabilities = client.initialized["capabilities"]
        assert capabilities["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
        tools = {t["name"]: t for t in (await client.request("tools/list"))["tools"]}
        assert tools["run_held"]["execution"] == {"taskSupport": "optional"}
        assert tools["spawn"]["execution"] == {"taskSupport": "optional"}
        assert "execution" not in tools["list_processes"]

        created = (await client.request("tools/call", as_task("run_held", "hold this", ttl=60_000)))["task"]
        assert created["status"] == "working" and created["ttl"] == 60_000 and created["pollInterval"] > 0
        task_id = created["taskId"]
        assert len(task_id) >= 32  # unguessable
        await wait_until(lambda: gate.held == 1, "the run to reach the provider")
        assert (await client.request("tasks/get", {"taskId": task_id}))["status"] == "working"
        listed = (await client.request("tasks/list"))["tasks"]
        assert [t["taskId"] for t in listed] == [task_id]

        waiting = asyncio.create_task(client.request("tasks/result", {"taskId": task_id}))
        await asyncio.sleep(0)
        assert not waiting.done()
        gate.open()
        result = await waiting
        assert result["structuredContent"]["text"] == "hold this"
        assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
        done = await client.request("tasks/get", {"taskId": task_id})
        assert done["status"] == "completed" and "pollInterval" not in done
        statuses = [
            n["params"]["status"] for n in client.notifications if n["method"] == "notifications/tasks/status"
        ]
        assert statuses[-1] == "completed"

        with pytest.raises(RawError) as err:  # a task's end is final
            await client.request("tasks/cancel", {"taskId": task_id})
        assert err.value.code == -32602 and "has already completed" in err.value.message
        with pytest.raises(RawError) as err:
            await client.request("tasks/get", {"taskId": "made-up"})
        assert err.value.code == -32602 and "Task not found" in err.value.message
        with pytest.raises(RawError) as err:  # only runs may be tasks
            await client.request("tools/call", {"name": "list_processes", "arguments": {}, "task": {}})
        assert err.value.code == -32601
        with pytest.raises(RawError) as err:  # tasks/update is the 2026-07-28 extension's
            await client.request("tasks/update", {"taskId": task_id, "inputResponses": {}})
        assert err.value.code == -32601
        plain = await client.request("tools/call", {"name": "run_counter", "arguments": {"message": "hi"}})
        assert plain["structuredContent"]["text"] == "one"  # without `task`, an ordinary call


async def test_cancelling_a_task_while_its_tool_runs_leaves_the_history_as_it_was(programs: Path):
    async with stdio(programs, "--no-state") as client:
        created = (await client.request("tools/call", as_task("run_sleeper", "sleep")))["task"]
        task_id = created["taskId"]
        await until_message(client, task_id, "calling tool toolbox__sleep")
        cancelled = await client.request("tasks/cancel", {"taskId": task_id})
        assert cancelled["status"] == "cancelled"
        assert (await client.request("tasks/get", {"taskId": task_id}))["status"] == "cancelled"
        with pytest.raises(RawError) as err:
            await client.request("tasks/result", {"taskId": task_id})
        assert "was cancelled" in err.value.message
        listing = await client.request("tools/call", {"name": "list_processes", "arguments": {}})
        (process,) = listing["structuredContent"]["processes"]
        assert (process["messages"], process["turns"]) == (0, 0)  # the cancelled run left nothing
        again = await client.request("tools/call", {"name": "run_counter", "arguments": {"message": "hi"}})
        assert again["structuredContent"]["text"] == "one"  # the server serves on


async def until_message(client: Any, task_id: str, text: str) -> None:
    for _ in range(6000):
        task = await client.request("tasks/get", {"taskId": task_id})
        if text in (task.get("statusMessage") or ""):
            return
        assert task["status"] == "working", task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never said {text!r}")


async def test_a_sampling_task_asks_through_tasks_result(programs: Path):
    asked: list[dict[str, Any]] = []

    async def sample(method: str, params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params)
        return {"role": "assistant", "content": {"type": "text", "text": "from the host"}, "model": "host"}

    async with stdio(programs, "--no-state", on_request=sample) as client:
        task_id = (await client.request("tools/call", as_task("run_host", "hi")))["task"]["taskId"]
        await until_status(client, task_id, "input_required")
        result = await client.request("tasks/result", {"taskId": task_id})
    assert result["structuredContent"]["text"] == "from the host"
    assert asked[0]["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}


async def test_another_sessions_tasks_are_unknown_to_it(programs: Path, gate: Gate):
    for url in serve_llmproc(programs, "streamable-http", "--no-state"):
        async with RawHttp(url) as alice, RawHttp(url) as bob:
            task_id = (await alice.request("tools/call", as_task("run_held", "hold")))["task"]["taskId"]
            with pytest.raises(RawError) as err:
                await bob.request("tasks/get", {"taskId": task_id})
            assert "Task not found" in err.value.message
            with pytest.raises(RawError):
                await bob.request("tasks/cancel", {"taskId": task_id})
            assert (await bob.request("tasks/list"))["tasks"] == []
            gate.open()
            result = await alice.request("tasks/result", {"taskId": task_id})
            assert result["structuredContent"]["text"] == "hold"


async def test_a_sessions_tasks_stop_when_it_ends(programs: Path, tmp_path: Path, gate: Gate):
    """Without a token a 2025-era HTTP task belongs to its session: once the client ends the
    session nobody can collect it, so it is cancelled rather than left to run on."""
    from llmproc.store import SqliteStore

    state = tmp_path / "state.db"
    for url in serve_llmproc(programs, "streamable-http", "--state", str(state)):
        async with RawHttp(url) as alice:
            task_id = (await alice.request("tools/call", as_task("run_held", "hold")))["task"]["taskId"]
            await wait_until(lambda: gate.held == 1, "the run to reach the provider")
        store = SqliteStore(state)  # the session is gone (DELETE): read what the server stored
        try:
            for _ in range(6000):
                record = await store.load_task(task_id)
                if record is not None and record.terminal:
                    break
                await asyncio.sleep(0.05)
            assert record is not None and record.status == "cancelled", record
            assert "the session that started it ended" in record.message
        finally:
            await store.close()
        gate.open()
        async with RawHttp(url) as later:  # and the server still serves
            plain = await later.request("tools/call", {"name": "run_counter", "arguments": {"message": "hi"}})
            assert plain["structuredContent"]["text"] == "one"


async def test_a_call_whose_client_went_away_still_finishes_and_is_kept(programs: Path, gate: Gate):
    """A dropped connection is not a cancel (the spec says so): the run ends, its turn is stored,
    and the client that comes back in the same session continues from it."""
    import httpx2

    def run(message: str) -> dict[str, Any]:
        return {"name": "run_held", "arguments": {"message": message}}

    for url in serve_llmproc(programs, "streamable-http", "--no-state"):
        async with RawHttp(url) as client:
            call = json.dumps({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": run("hold on")})
            async with (
                httpx2.AsyncClient(timeout=60) as http,
                http.stream("POST", url, headers=client.headers, content=call) as answer,
            ):
                assert answer.status_code == 200
                await wait_until(lambda: gate.held == 1, "the run to reach the provider")
            # the connection is gone, with the run held at the provider
            gate.open()
            listing = {}
            for _ in range(6000):
                listing = await client.request("tools/call", {"name": "list_processes", "arguments": {}})
                (process,) = listing["structuredContent"]["processes"]
                if process["turns"] == 1:
                    break
                await asyncio.sleep(0.05)
            assert process["turns"] == 1 and process["messages"] == 2, listing
            again = await client.request("tools/call", run("and now"))
            assert again["structuredContent"]["text"] == "hold on | and now"  # continued from the kept turn


async def test_a_task_past_its_ttl_is_gone(programs: Path):
    async with stdio(programs, "--no-state") as client:
        task_id = (await client.request("tools/call", as_task("run_counter", "hi", ttl=1)))["task"]["taskId"]
        for _ in range(6000):
            try:
                await client.request("tasks/get", {"taskId": task_id})
            except RawError as err:
                assert "Task not found" in err.message
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the task outlived its ttl")
        assert (await client.request("tasks/list"))["tasks"] == []


async def test_tasks_survive_a_restart_and_one_that_was_running_is_failed(
    programs: Path, tmp_path: Path, gate: Gate
):
    state = str(tmp_path / "state.db")
    options = ("--state", state, "--lease-seconds", "1")
    async with stdio(programs, *options) as client:
        finished = (await client.request("tools/call", as_task("run_counter", "hi")))["task"]["taskId"]
        await until_status(client, finished, "completed")
        running = (await client.request("tools/call", as_task("run_held", "hold")))["task"]["taskId"]
        await wait_until(lambda: gate.held == 1, "the run to reach the provider")
        client.kill()  # the server dies while the run waits for the model
    async with stdio(programs, *options) as client:
        result = await client.request("tasks/result", {"taskId": finished})
        assert result["structuredContent"]["text"] == "one"
        failed = await until_status(client, running, "failed")
        assert "stopped before it finished" in failed["statusMessage"]
        with pytest.raises(RawError) as err:
            await client.request("tasks/result", {"taskId": running})
        assert "stopped before it finished" in err.value.message
        listing = await client.request("tools/call", {"name": "list_processes", "arguments": {}})
        held = [p for p in listing["structuredContent"]["processes"] if p["program"] == "held"]
        assert all(p["messages"] == 0 for p in held)  # the run that died left nothing


# -- 2026-07-28 ------------------------------------------------------------------------------------


@pytest.fixture
def http_server(programs: Path, anthropic_env: Any) -> Iterator[str]:
    yield from serve_llmproc(programs, "streamable-http", "--no-state")


async def test_a_client_that_opts_in_gets_a_task_and_others_never_do(http_server: str, gate: Gate):
    tasks = sdk_tasks.Tasks()
    async with Client(streamable_http_client(http_server), extensions=[tasks]) as client:
        assert client.protocol_version == "2026-07-28"
        assert "io.modelcontextprotocol/tasks" in (client.server_capabilities.extensions or {})
        assert client.server_capabilities.tasks is None  # the 2025 capability is not this era's
        gate.open()
        result = await client.call_tool("run_held", {"message": "hi"})  # polled to its end
        assert result.structured_content["text"] == "hi"
        assert len(tasks.created) == 1
        created = tasks.created[0]
        assert created.status == "working" and created.poll_interval_ms
        done = await sdk_tasks.send(client.session, "tasks/get", created.task_id)
        assert done["status"] == "completed" and done["result"]["structuredContent"]["text"] == "hi"
        assert done["ttlMs"] > 0
        listed = await client.call_tool("list_processes", {})  # not a run: answered directly
        assert "held" in listed.structured_content["programs"]
        assert len(tasks.created) == 1
        with pytest.raises(MCPError) as err:  # the 2025-11-25 methods are not this era's
            await sdk_tasks.send(client.session, "tasks/result", created.task_id)
        assert err.value.error.code == -32601

    async with Client(streamable_http_client(http_server)) as plain:  # did not opt in
        result = await plain.call_tool("run_counter", {"message": "hi"})
        assert result.structured_content["text"] == "one"
        with pytest.raises(MCPError) as err:
            await sdk_tasks.send(plain.session, "tasks/get", created.task_id)
        assert err.value.error.code == -32021


async def test_ten_runs_started_then_collected_by_another_client(http_server: str, gate: Gate):
    async with Client(streamable_http_client(http_server), extensions=[sdk_tasks.Tasks()]) as client:
        created = await asyncio.gather(
            *(sdk_tasks.start(client, "run_held", {"message": f"hold {n}"}) for n in range(10))
        )
    await wait_until(lambda: gate.held == 10, "all ten runs to reach the provider")
    gate.open()
    async with Client(streamable_http_client(http_server), extensions=[sdk_tasks.Tasks()]) as later:
        done = await asyncio.gather(*(sdk_tasks.settle(later.session, c.task_id) for c in created))
    assert sorted(d["result"]["structuredContent"]["text"] for d in done) == sorted(
        f"hold {n}" for n in range(10)
    )


async def test_a_sampling_task_waits_for_input_and_completes_after_update(http_server: str):
    async def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert method == "sampling/createMessage" and params["maxTokens"] > 0
        return {"role": "assistant", "content": {"type": "text", "text": "host says hi"}, "model": "host"}

    import mcp_types as types

    client = Client(
        streamable_http_client(http_server), extensions=[sdk_tasks.Tasks()],
        sampling_callback=lambda *_: None, sampling_capabilities=types.SamplingCapability(),
    )  # fmt: skip
    async with client:
        created = await sdk_tasks.start(client, "run_host", {"message": "hi"})
        for _ in range(6000):
            task = await sdk_tasks.send(client.session, "tasks/get", created.task_id)
            if task["status"] == "input_required":
                break
            await asyncio.sleep(0.05)
        (key,) = task["inputRequests"]
        assert task["inputRequests"][key]["method"] == "sampling/createMessage"
        done = await sdk_tasks.settle(client.session, created.task_id, answer)
    assert done["status"] == "completed"
    assert done["result"]["structuredContent"]["text"] == "host says hi"


async def test_cancelling_a_modern_task_answers_and_keeps_the_history(http_server: str, gate: Gate):
    async with Client(streamable_http_client(http_server), extensions=[sdk_tasks.Tasks()]) as client:
        process_id = (await client.call_tool("spawn", {"program": "held"})).structured_content["process_id"]
        created = await sdk_tasks.start(client, "run_held", {"message": "hold", "process_id": process_id})
        await wait_until(lambda: gate.held == 1, "the run to reach the provider")
        acknowledged = await sdk_tasks.send(client.session, "tasks/cancel", created.task_id)
        assert acknowledged["resultType"] == "complete"
        task = await sdk_tasks.settle(client.session, created.task_id)
        assert task["status"] == "cancelled" and "error" not in task and "result" not in task
        gate.open()  # the model sees the conversation: the cancelled turn is not in it
        again = await client.call_tool("run_held", {"message": "again", "process_id": process_id})
        assert again.structured_content["text"] == "again"
