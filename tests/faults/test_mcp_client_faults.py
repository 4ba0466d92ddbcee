"""MCP servers misbehaving under a process: the process survives, the model sees an error
result, and no server subprocess outlives the process that started it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import anyio
import pytest

from fake_provider import Turn
from helpers import call
from http_servers import TOOLBOX
from llmproc import LLMProcess, McpServerError
from server_thread import descendants

MODEL = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\n'
SERVER = (
    f"[mcp.servers.toolbox]\ncommand = {json.dumps(sys.executable)}\nargs = [{json.dumps(str(TOOLBOX))}]\n"
    "timeout = 5\n"
)
HUGE = 1_000_000  # characters of tool result: ten times [limits] max_tool_result_chars


async def settled_descendants(expected: set[int], timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (now := descendants(os.getpid())) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return now


# fault -> (tool call, whether the model sees an error, what its result says)
FAULTS = {
    "crash mid-call": (call("toolbox__crash"), True, "closed the connection during 'crash'"),
    "hang": (call("toolbox__sleep", seconds=600), True, "did not answer 'sleep' within 5s"),
    "invalid JSON-RPC lines": (call("toolbox__noise"), False, "answered after the noise"),
    "a reply that is not a tool result": (
        call("toolbox__bad_reply"),
        True,
        "a reply to 'bad_reply' that is not",
    ),
    "a huge result": (call("toolbox__big", size=HUGE), False, "[result cut: "),
}


@pytest.mark.parametrize("fault", FAULTS)
async def test_the_process_survives_a_misbehaving_server(fault, write_program, anthropic_env):
    fake = anthropic_env
    before = descendants(os.getpid())
    tool_call, is_error, says = FAULTS[fault]
    process = LLMProcess.from_toml(write_program(MODEL + SERVER))
    fake.push(tool_call, Turn(text="survived"))
    result = await process.run("go")
    assert result.text == "survived"
    outcome = result.tool_calls[0]
    assert outcome.is_error is is_error, outcome.result[:300]
    sent = json.dumps(fake.bodies()[-1])  # the request after the tool call: what the model saw
    assert says in sent, outcome.result[:300]
    assert len(sent) < 500_000  # the error or a cut result, never 1 MB
    # the server is usable again (restarted where it had to be), and the history is whole
    fake.push(call("toolbox__add", a=2, b=3), Turn(text="still here"))
    again = await process.run("add")
    assert (again.text, again.tool_calls[0].result) == ("still here", "5")
    assert [m.role for m in process.messages] == ["user", "assistant", "user", "assistant"] * 2
    await process.aclose()
    assert await settled_descendants(before) == before


async def test_a_server_that_exits_at_start_leaves_nothing_behind(write_program, anthropic_env):
    before = descendants(os.getpid())
    program = MODEL + SERVER.replace(
        f"{json.dumps(str(TOOLBOX))}]", f'{json.dumps(str(TOOLBOX))}, "--exit-at-start"]'
    )
    process = LLMProcess.from_toml(write_program(program))
    for _ in range(3):  # each run tries again, and fails the same clear way
        with pytest.raises(McpServerError, match="failed to start"):
            await process.run("go")
    assert process.messages == ()
    await process.aclose()
    assert await settled_descendants(before) == before


async def test_servers_of_many_processes_are_all_stopped(write_program, anthropic_env):
    """Ten processes each with a private server (different env), closed while calls hang."""
    fake = anthropic_env
    before = descendants(os.getpid())
    processes = [
        LLMProcess.from_toml(write_program(MODEL + SERVER + f'env = {{ N = "{n}" }}\n', f"p{n}.toml"))
        for n in range(10)
    ]
    fake.responder = lambda view, body: (
        call("toolbox__sleep", seconds=600) if not view.last_is_tool_result else Turn(text="late")
    )
    runs = [asyncio.create_task(p.run("wait")) for p in processes]
    with anyio.fail_after(120):  # however long ten servers take to start on a loaded machine
        while len(descendants(os.getpid()) - before) < 10:
            await asyncio.sleep(0.05)
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    for process in processes:
        assert process.messages == ()
        await process.aclose()
    assert await settled_descendants(before) == before
