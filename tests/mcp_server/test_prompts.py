"""Programs as prompts (a host's slash commands), and completion of prompt and resource template
arguments, in both protocol eras."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client, MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from helpers import COUNTER, SCRIPTED, llmproc_mcp, write_programs

GREETER = (
    SCRIPTED
    + '[prompt]\nuser = "Say hello."\n[demo]\ndisplay_name = "Greeter"\n'
    + 'prompts = ["First, a joke.", "Then a poem."]\n[server]\ndescription = "Greets you."\n'
)


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    return write_programs(tmp_path / "programs", {"counter.toml": COUNTER, "team/greeter.toml": GREETER})


def text(result) -> str:  # type: ignore[no-untyped-def]
    (message,) = result.messages
    assert message.role == "user"
    return message.content.text


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_each_program_and_demo_prompt_is_a_prompt(programs: Path, mode: str):
    async with Client(llmproc_mcp(programs, "--no-state"), mode=mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {
            "counter",
            "team_greeter",
            "team_greeter-demo-1",
            "team_greeter-demo-2",
            "spawn",
        }
        greeter = prompts["team_greeter"]
        assert greeter.title == "Ask Greeter" and greeter.description == "Greets you."
        (argument,) = greeter.arguments
        assert argument.name == "message" and argument.required is False  # [prompt] user is the default
        assert prompts["counter"].arguments[0].required is True
        assert not prompts["team_greeter-demo-2"].arguments

        asked = text(await client.get_prompt("team_greeter", {"message": "Hi there"}))
        assert "`run_team_greeter`" in asked and asked.endswith("Hi there")
        assert text(await client.get_prompt("team_greeter")).endswith("Say hello.")
        assert text(await client.get_prompt("team_greeter-demo-2")).endswith("Then a poem.")
        spawned = text(await client.get_prompt("spawn", {"program": "counter", "message": "count"}))
        assert "`spawn`" in spawned and '"counter"' in spawned and spawned.endswith("count")

        for name, arguments, message in [
            ("nope", {}, "unknown prompt 'nope'"),
            ("counter", {}, "needs a 'message'"),
            ("team_greeter-demo-3", {}, "unknown prompt"),
            ("spawn", {"program": "ghost", "message": "x"}, "unknown program 'ghost'"),
        ]:
            with pytest.raises(MCPError) as err:
                await client.get_prompt(name, arguments)
            assert err.value.error.code == -32602 and message in err.value.error.message


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_program_names_and_your_process_ids_complete(programs: Path, mode: str):
    async with Client(llmproc_mcp(programs, "--no-state"), mode=mode) as client:
        spawn = PromptReference(type="ref/prompt", name="spawn")
        done = await client.complete(spawn, {"name": "program", "value": "te"})
        assert done.completion.values == ["team_greeter"]
        assert (await client.complete(spawn, {"name": "program", "value": ""})).completion.total == 2
        pid = (await client.call_tool("run_counter", {"message": "hi"})).structured_content["process_id"]
        transcript = ResourceTemplateReference(type="ref/resource", uri="llmproc://processes/{process_id}")
        found = await client.complete(transcript, {"name": "process_id", "value": pid[:3]})
        assert found.completion.values == [pid]
        programs_ref = ResourceTemplateReference(type="ref/resource", uri="llmproc://programs/{name}")
        assert (await client.complete(programs_ref, {"name": "name", "value": "c"})).completion.values == [
            "counter"
        ]


async def test_a_programs_title_and_icon_are_published(tmp_path: Path):
    (tmp_path / "programs").mkdir()
    (tmp_path / "programs" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    programs = write_programs(
        tmp_path / "programs",
        {"counter.toml": COUNTER + '[server]\ntitle = "Counting helper"\nicon = "logo.png"\n'},
    )
    async with Client(llmproc_mcp(programs, "--no-state")) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "run_counter")
        assert tool.title == "Counting helper"
        (icon,) = tool.icons
        assert icon.mime_type == "image/png" and icon.src == "data:image/png;base64,iVBORw0KGgo="
        prompt = next(p for p in (await client.list_prompts()).prompts if p.name == "counter")
        assert prompt.title == "Counting helper"
