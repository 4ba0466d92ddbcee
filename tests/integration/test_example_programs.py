"""The example programs for linking, fork, goto, MCP tools and builtin tools, end to end:
each runs as shipped, with its model played by the fake Anthropic server."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from fake_provider import ScriptedToolCall, Turn
from helpers import call, system_text
from llmproc import LLMProcess

PROGRAMS = Path(__file__).resolve().parents[2] / "programs"


async def test_program_linking_asks_the_repo_expert_with_the_readme_preloaded(anthropic_env):
    fake = anthropic_env
    process = LLMProcess.from_toml(PROGRAMS / "program_linking" / "main.toml")
    fake.push(call("spawn", program_name="repo_expert", prompt="How does program linking work?"))
    fake.responder = lambda view, body: (
        Turn(text="Through the spawn tool and [linked_programs].")
        if "expert on the llmproc project" in system_text(body)
        else None
    )
    fake.push()
    result = await process.run("How does program linking work in llmproc?")
    assert result.tool_calls[0].result == "Through the spawn tool and [linked_programs]."
    expert = next(r.body for r in fake.requests if "expert on the llmproc project" in system_text(r.body))
    assert "## Quick start" in system_text(expert)  # the README, preloaded
    await process.aclose()


async def test_fork_example_splits_work_and_stops_at_its_depth_limit(anthropic_env):
    fake = anthropic_env

    def respond(view: Any, body: Any) -> Turn | None:
        task = re.search(r"Your task: (.*)", view.last_tool_result_text)
        if task:
            return call("fork", prompts=["deeper"]) if "again" not in task.group(1) else None
        return None

    fake.responder = respond
    process = LLMProcess.from_toml(PROGRAMS / "fork.toml")
    fake.push(call("fork", prompts=["Python", "Go", "Rust"]))
    result = await process.run("Compare the languages.")
    answer = result.tool_calls[0].result
    assert answer.count("<fork_result") == 3
    assert "limit reached: processes may nest 1 deep" in json.dumps([r.body for r in fake.requests])


async def test_goto_example(anthropic_env):
    fake = anthropic_env
    process = LLMProcess.from_toml(PROGRAMS / "goto.toml")
    fake.push(Turn(text="Tokyo, Kyoto, Osaka."), Turn(text="Kyoto was the capital for a thousand years..."))
    await process.run("Three cities in Japan?")
    await process.run("History of Kyoto?")
    detour = process.messages[2].id
    fake.push(call("goto", position=detour, message="Cities: Tokyo, Kyoto, Osaka. Suggest a route."))
    fake.push(Turn(text="Tokyo, then Kyoto, then Osaka."))
    result = await process.run("Clean up and suggest a route.")
    assert result.text == "Tokyo, then Kyoto, then Osaka."
    assert len(process.messages) == 4
    assert "thousand years" not in json.dumps([m.text for m in process.messages])


async def test_mcp_tools_example_uses_the_time_server(anthropic_env, time_server, monkeypatch):
    fake = anthropic_env
    monkeypatch.setenv("PATH", str(Path(time_server[0]).parent) + os.pathsep + os.environ["PATH"])
    async with LLMProcess.from_toml(PROGRAMS / "mcp_tools.toml") as process:
        specs = {s.name: s for s in await process.tool_specs()}
        assert set(specs) == {"time__get_current_time", "time__convert_time"}
        assert specs["time__get_current_time"].description.startswith("Current time in an IANA time zone")
        fake.push(call("time__get_current_time", timezone="Asia/Tokyo"), Turn(text="It is late in Tokyo."))
        result = await process.run("What time is it in Tokyo?")
        assert json.loads(result.tool_calls[0].result)["timezone"] == "Asia/Tokyo"


async def test_builtin_tools_example(anthropic_env):
    fake = anthropic_env
    process = LLMProcess.from_toml(PROGRAMS / "builtin_tools.toml")
    fake.push(
        Turn(
            tool_calls=(
                ScriptedToolCall("read_file", {"path": "README.md"}),
                ScriptedToolCall("calculator", {"expression": "2 ** 8"}),
                ScriptedToolCall("read_file", {"path": "/etc/hostname"}),
                ScriptedToolCall("fd_to_file", {"fd": "fd:1", "path": "x"}),
            )
        ),
        Turn(text="done"),
    )
    result = await process.run("Summarise README.md")
    readme, power, outside, writer = result.tool_calls
    assert readme.result.startswith("The result of read_file is ")  # the README is long: a descriptor
    assert "stored as fd:1" in readme.result
    assert power.result == "256"
    assert outside.is_error and outside.result.startswith("access denied: '/etc/hostname'")
    assert writer.is_error and writer.result.startswith("unknown tool 'fd_to_file'")
    assert "working_directory:" in system_text(fake.requests[0].body)


@pytest.mark.parametrize("name", ["program_linking/main.toml", "fork.toml", "goto.toml", "mcp_tools.toml"])
def test_examples_document_how_to_run_them(name):
    text = (PROGRAMS / name).read_text()
    assert text.startswith("#") and ("llmproc " in text or "llmproc-demo " in text)
