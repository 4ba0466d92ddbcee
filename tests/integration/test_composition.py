"""Two llmproc-mcp servers composed: a program whose MCP server is another llmproc-mcp, and the
depth limit that stops a server that ends up starting itself."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from fake_provider import ScriptedToolCall, Turn
from helpers import system_text
from llmproc import LLMProcess, McpServerError
from mcp_results import text

ROOT = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)


async def test_front_desk_asks_an_expert_on_a_second_server(anthropic_env, monkeypatch):
    fake = anthropic_env
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])  # where pip put llmproc-mcp
    fake.responder = lambda view, body: (
        Turn(text="Processes fork and spawn / one protocol joins them all / the kernel keeps time")
        if "You are a poet." in system_text(body)
        else None
    )
    fake.push(Turn(tool_calls=(ScriptedToolCall("run_poet", {"message": "A haiku about processes."}),)))
    async with LLMProcess.from_toml(ROOT / "programs" / "composition" / "front_desk.toml") as process:
        assert {s.name for s in await process.tool_specs()} == {"run_poet", "run_calculator"}
        result = await process.run("Write a haiku about processes.")
    (call,) = result.tool_calls
    assert call.result.startswith("Processes fork and spawn")
    assert result.text.startswith("done: Processes fork and spawn")
    poet_request = next(r for r in fake.requests if "You are a poet." in system_text(r.body))
    assert poet_request.headers["authorization"] == f"Bearer {fake.api_key}"  # the key was handed on


async def test_a_server_that_starts_itself_is_stopped_by_the_depth_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])
    (tmp_path / "loop.toml").write_text(
        '[model]\nname = "s"\nprovider = "scripted"\n'
        f"[mcp.servers.self]\ncommand = {json.dumps(sys.executable)}\n"
        f'args = ["-m", "llmproc.cli.mcp", "--programs", {json.dumps(str(tmp_path))}, "--max-depth", "0"]\n'
    )
    process = LLMProcess.from_toml(tmp_path / "loop.toml")
    with pytest.raises(McpServerError) as caught:
        await process.tool_specs()
    assert (
        "this server is nested 1 llmproc-mcp servers deep (LLMPROC_MCP_DEPTH), more than --max-depth 0"
        in str(caught.value)
    )
    await process.aclose()


async def test_a_cycle_over_http_ends_at_the_depth_limit(tmp_path):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from http_servers import free_port, serve

    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    (tmp_path / "loop.toml").write_text(  # every level asks the server that runs it again
        '[model]\nname = "s"\nprovider = "scripted"\n'
        '[scripted]\nreplies = [{tool_calls = [{name = "self__run_loop", arguments = {message = "deeper"}}]},'
        ' "done"]\n'
        f'[mcp.servers.self]\nurl = "{url}"\n'
    )
    command = [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(tmp_path), "--transport",
               "streamable-http", "--port", str(port), "--max-depth", "2"]  # fmt: skip
    for url in serve(command, port, "streamable-http"):
        async with Client(url) as client:
            result = await client.call_tool("run_loop", {"message": "start"})
        assert not result.is_error and text(result) == "done"  # it ended
        deep = httpx2.AsyncClient(headers={"X-LLMProc-Depth": "3"})
        async with deep, Client(streamable_http_client(url, http_client=deep)) as client:
            refused = await client.call_tool("run_loop", {"message": "start"})
        assert refused.is_error
        assert (
            "this request is nested 3 llmproc-mcp servers deep, more than --max-depth 2"
            in refused.content[0].text
        )
