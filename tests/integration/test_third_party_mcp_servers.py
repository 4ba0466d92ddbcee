"""Processes using third-party MCP servers as users run them: `mcp-server-time` (Python, PyPI)
and the reference server `everything` (TypeScript, npm, an older protocol era)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from fake_provider import ScriptedToolCall, Turn
from helpers import call
from llmproc import LLMProcess

MODEL = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\n'


def server_section(name: str, command: list[str]) -> str:
    return f"[mcp.servers.{name}]\ncommand = {json.dumps(command[0])}\nargs = {json.dumps(command[1:])}\n"


async def test_mcp_server_time(write_program, anthropic_env, time_server):
    fake = anthropic_env
    async with LLMProcess.from_toml(
        write_program(
            MODEL + server_section("time", time_server) + '[tools.mcp]\ntime = ["get_current_time"]\n'
        )
    ) as process:
        assert [s.name for s in await process.tool_specs()] == ["time__get_current_time"]
        fake.push(call("time__get_current_time", timezone="UTC"), Turn(text="It is now."))
        result = await process.run("What time is it in UTC?")
        reply = json.loads(result.tool_calls[0].result)
        assert reply["timezone"] == "UTC"
        stamp = datetime.fromisoformat(reply["datetime"])
        assert abs((stamp - datetime.now(timezone.utc)).total_seconds()) < 120
        schema = fake.requests[0].body["tools"][0]["input_schema"]
        assert schema["required"] == ["timezone"]


async def test_server_everything(write_program, anthropic_env, everything_server):
    fake = anthropic_env
    async with LLMProcess.from_toml(
        write_program(
            MODEL
            + server_section("everything", everything_server)
            + '[tools.mcp.everything.echo]\n[tools.mcp.everything.get-sum]\nalias = "add"\n'
            + "[tools.mcp.everything.get-tiny-image]\n"
        )
    ) as process:
        names = sorted(s.name for s in await process.tool_specs())
        assert names == ["add", "everything__echo", "everything__get-tiny-image"]
        fake.push(
            Turn(
                tool_calls=(
                    ScriptedToolCall("everything__echo", {"message": "ping"}),
                    ScriptedToolCall("add", {"a": 2, "b": 3}),
                    ScriptedToolCall("everything__get-tiny-image", {}),
                )
            ),
            Turn(text="all done"),
        )
        result = await process.run("use them")
        echo, total, image = result.tool_calls
        assert echo.result == "Echo: ping"
        assert "5" in total.result
        assert not image.is_error
        sent = fake.requests[1].body["messages"][-1]["content"]
        image_result = next(
            b
            for b in sent
            if b.get("tool_use_id") == fake.requests[1].body["messages"][-2]["content"][2]["id"]
        )
        kinds = [c["type"] for c in image_result["content"]]
        assert "image" in kinds  # the image reached the model as an image, not as text
