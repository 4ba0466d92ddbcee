"""MCP servers as userspace tools: the tests' own toolbox server over stdio, Streamable HTTP
and SSE, driven by processes whose model is the Anthropic SDK against the fake provider."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_provider import ScriptedToolCall, Turn
from helpers import call
from http_servers import TOOLBOX, free_port, serve_toolbox
from llmproc import LLMProcess, LLMProgram, McpServerError, ProgramError

MODEL = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\n'
STDIO = (
    f"[mcp.servers.toolbox]\ncommand = {json.dumps(sys.executable)}\nargs = [{json.dumps(str(TOOLBOX))}]\n"
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited but not been reaped yet
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True


async def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
def http_toolbox() -> Iterator[str]:
    yield from serve_toolbox("streamable-http")


@pytest.fixture
def sse_toolbox() -> Iterator[str]:
    yield from serve_toolbox("sse")


def process_of(write_program: Any, text: str, name: str = "program.toml") -> LLMProcess:
    return LLMProcess.from_toml(write_program(MODEL + text, name))


async def server_pid(process: LLMProcess, fake: Any) -> int:
    fake.push(call("toolbox__server_pid"), Turn(text="ok"))
    result = await process.run("pid?")
    return int(result.tool_calls[-1].result)


# -- tools from a server ---------------------------------------------------------------------------


async def test_stdio_server_tools_are_named_server__tool_and_work(write_program, anthropic_env):
    fake = anthropic_env
    async with process_of(write_program, STDIO) as process:
        names = [s.name for s in await process.tool_specs()]
        assert "toolbox__add" in names and "toolbox__echo" in names
        fake.push(call("toolbox__add", a=2, b=40), Turn(text="42 it is"))
        result = await process.run("2 + 40?")
        assert result.text == "42 it is"
        assert result.tool_calls[0].result == "42"
        add = next(t for t in fake.requests[0].body["tools"] if t["name"] == "toolbox__add")
        assert add["description"] == "Add two integers."
        assert add["input_schema"]["required"] == ["a", "b"]


async def test_selection_alias_description_and_access(write_program, anthropic_env):
    async with process_of(
        write_program,
        STDIO
        + '[tools.mcp.toolbox.add]\nalias = "plus"\ndescription = "Sum two numbers."\n'
        + '[tools.mcp.toolbox.delete_everything]\n[tools.mcp.toolbox.write_note]\naccess = "read"\n'
        + '[limits]\nmax_access = "write"\n',
    ) as process:
        specs = {s.name: s for s in await process.tool_specs()}
        # delete_everything is destructive (admin by its annotations) and this process allows write
        assert set(specs) == {"plus", "toolbox__write_note"}
        assert specs["plus"].description == "Sum two numbers."
        assert specs["plus"].access == "read"  # readOnlyHint
        assert specs["toolbox__write_note"].access == "read"  # the program's override


async def test_a_list_selection_and_an_unknown_tool(write_program, anthropic_env):
    async with process_of(write_program, STDIO + '[tools.mcp]\ntoolbox = ["echo", "ad"]\n') as process:
        with pytest.raises(
            McpServerError, match="MCP server 'toolbox' has no tool named 'ad'; it offers: add, echo"
        ):
            await process.tool_specs()


async def test_images_and_resources_reach_the_model(write_program, anthropic_env):
    fake = anthropic_env
    async with process_of(write_program, STDIO) as process:
        fake.push(
            Turn(
                tool_calls=(
                    ScriptedToolCall("toolbox__pixel", {}),
                    ScriptedToolCall("toolbox__note_resource", {}),
                )
            ),
            Turn(text="seen"),
        )
        await process.run("show me")
        results = [
            b for b in fake.requests[1].body["messages"][-1]["content"] if b.get("type") == "tool_result"
        ]
        image = results[0]["content"][0]
        assert image["type"] == "image"
        assert image["source"]["media_type"] == "image/png" and image["source"]["type"] == "base64"
        resource = results[1]["content"]
        text = resource if isinstance(resource, str) else resource[0]["text"]
        assert text == '<resource uri="note://1">\nremember the milk\n</resource>'


async def test_a_tool_error_is_an_error_result(write_program, anthropic_env):
    fake = anthropic_env
    async with process_of(write_program, STDIO) as process:
        fake.push(call("toolbox__fail", message="disk full"), Turn(text="sorry"))
        result = await process.run("go")
        assert result.tool_calls[0].is_error
        assert "disk full" in result.tool_calls[0].result


# -- sharing and lifetime --------------------------------------------------------------------------


async def test_processes_share_a_server_and_the_last_close_stops_it(write_program, anthropic_env):
    fake = anthropic_env
    first = process_of(write_program, STDIO, "a.toml")
    second = process_of(write_program, STDIO, "b.toml")
    pid = await server_pid(first, fake)
    assert await server_pid(second, fake) == pid  # same definition, one server
    await first.aclose()
    assert alive(pid)  # the second process still uses it
    await second.aclose()
    assert await wait_gone(pid)


async def test_servers_start_on_first_use_not_at_load(write_program, anthropic_env):
    process = process_of(write_program, STDIO)
    from llmproc.kernel import default_kernel

    assert all(c.spec.name != "toolbox" or not c.alive for c in default_kernel.mcp.live())
    await process.tool_specs()
    assert any(c.spec.name == "toolbox" and c.alive for c in default_kernel.mcp.live())
    await process.aclose()


async def test_a_crashed_server_is_an_error_result_and_restarts_on_next_use(write_program, anthropic_env):
    fake = anthropic_env
    async with process_of(write_program, STDIO) as process:
        pid = await server_pid(process, fake)
        fake.push(call("toolbox__crash"), Turn(text="it broke"))
        result = await process.run("crash it")
        assert result.text == "it broke"
        assert result.tool_calls[0].is_error
        assert result.tool_calls[0].result.startswith(
            "MCP server 'toolbox' closed the connection during 'crash' (it may have crashed)"
        )
        assert await wait_gone(pid)
        new_pid = await server_pid(process, fake)
        assert new_pid != pid and alive(new_pid)


async def test_a_hung_server_times_out_and_is_restarted(write_program, anthropic_env):
    fake = anthropic_env
    async with process_of(write_program, STDIO + "timeout = 3\n") as process:  # its other calls fit, loaded
        pid = await server_pid(process, fake)
        fake.push(call("toolbox__sleep", seconds=30), Turn(text="too slow"))
        started = time.monotonic()
        result = await process.run("wait")
        assert time.monotonic() - started < 25  # it did not wait for the 30 s sleep
        assert result.tool_calls[0].result == (
            "MCP server 'toolbox' did not answer 'sleep' within 3s; "
            "it was stopped and will be started again on next use"
        )
        assert await wait_gone(pid)
        assert await server_pid(process, fake) != pid


async def test_a_server_that_fails_to_start_names_itself_its_command_and_its_stderr(
    write_program, anthropic_env
):
    fake = anthropic_env
    process = process_of(
        write_program,
        f"[mcp.servers.broken]\ncommand = {json.dumps(sys.executable)}\n"
        f'args = [{json.dumps(str(TOOLBOX))}, "--exit-at-start"]\n',
    )
    fake.push(Turn(text="never sent"))
    with pytest.raises(McpServerError) as caught:
        await process.run("hello")
    message = str(caught.value)
    assert message.startswith(
        f"MCP server 'broken' (command: {sys.executable} {TOOLBOX} --exit-at-start) failed to start"
    )
    assert "toolbox: configuration missing, giving up" in message
    assert process.messages == ()  # the run never started
    assert len(fake.requests) == 0
    await process.aclose()


async def test_a_missing_command_is_named(write_program, anthropic_env):
    process = process_of(write_program, '[mcp.servers.ghost]\ncommand = "no-such-mcp-server-binary"\n')
    with pytest.raises(
        McpServerError,
        match="MCP server 'ghost' \\(command: no-such-mcp-server-binary\\) failed to start: "
        "command not found",
    ):
        await process.tool_specs()
    await process.aclose()


# -- HTTP transports -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_http_transports(write_program, anthropic_env, transport, request):
    fake = anthropic_env
    url = request.getfixturevalue("http_toolbox" if transport == "streamable-http" else "sse_toolbox")
    async with process_of(
        write_program,
        f'[mcp.servers.toolbox]\nurl = "{url}"\ntransport = "{transport}"\n'
        '[mcp.servers.toolbox.headers]\nAuthorization = "Bearer ${TOOLBOX_TOKEN:-none}"\n',
    ) as process:
        fake.push(call("toolbox__echo", text="over http"), Turn(text="ok"))
        result = await process.run("echo")
        assert result.tool_calls[0].result == "over http"


async def test_an_unreachable_url_is_a_clear_start_error(write_program, anthropic_env):
    port = free_port()
    process = process_of(write_program, f'[mcp.servers.remote]\nurl = "http://127.0.0.1:{port}/mcp"\n')
    with pytest.raises(
        McpServerError,
        match=f"MCP server 'remote' \\(streamable-http http://127.0.0.1:{port}/mcp\\) failed to start",
    ):
        await process.tool_specs()
    await process.aclose()


# -- configuration ---------------------------------------------------------------------------------


def test_config_path_json_with_environment_variables(write_program, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLBOX_PY", str(TOOLBOX))
    (tmp_path / "mcp.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "toolbox": {
                        "command": sys.executable,
                        "args": ["${TOOLBOX_PY}"],
                        "env": {"MODE": "${MODE:-test}"},
                    },
                    "remote": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "k"}},
                }
            }
        )
    )
    program = LLMProgram.from_toml(
        write_program(MODEL + '[mcp]\nconfig_path = "mcp.json"\n[tools.mcp]\ntoolbox = "all"\n')
    )
    spec = program.mcp_servers["toolbox"]
    assert spec.args == (str(TOOLBOX),)
    assert dict(spec.env) == {"MODE": "test"}
    assert set(program.mcp_servers) == {"toolbox"}  # only the selected server is used
    everything = LLMProgram.from_toml(write_program(MODEL + '[mcp]\nconfig_path = "mcp.json"\n', "all.toml"))
    assert everything.mcp_servers["remote"].transport == "streamable-http"
    assert "X-Key" not in everything.mcp_servers["remote"].describe()  # headers never in messages


@pytest.mark.parametrize(
    ("text", "files", "message"),
    [
        ('[mcp]\nconfig_path = "missing.json"\n', {}, "[mcp] config_path '{tmp}/missing.json' not found"),
        (
            '[mcp]\nconfig_path = "bad.json"\n',
            {"bad.json": "{nope"},
            "is not valid JSON: Expecting property name",
        ),
        ('[mcp]\nconfig_path = "bad.json"\n', {"bad.json": "{}"}, 'has no "mcpServers" object'),
        (
            '[tools.mcp]\ntimez = "all"\n[mcp.servers.time]\ncommand = "x"\n',
            {},
            "no MCP server named 'timez'; did you mean 'time'?",
        ),
        (
            '[mcp.servers.t]\ncommand = "${NOT_SET_ANYWHERE}"\n',
            {},
            "environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            '[mcp.servers.t]\ncommand = "x"\nurl = "http://h"\n',
            {},
            "give exactly one of 'command' (stdio) or 'url' (HTTP)",
        ),
        (
            '[mcp.servers.t]\ncommand = "x"\ntransport = "sse"\n',
            {},
            "transport 'sse' needs a url, not a command",
        ),
    ],
)
def test_mcp_configuration_errors(write_program, tmp_path, text, files, message):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    with pytest.raises(ProgramError) as caught:
        LLMProgram.from_toml(write_program(MODEL + text))
    assert message.replace("{tmp}", str(tmp_path)) in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "program.toml"))


def test_mcp_tools_from_synchronous_code(write_program, anthropic_env):
    fake = anthropic_env
    process = process_of(write_program, STDIO)
    fake.push(call("toolbox__add", a=1, b=1), Turn(text="two"))
    assert process.run("1 + 1?").text == "two"  # no event loop of our own
    fake.push(call("toolbox__server_pid"), Turn(text="ok"))
    pid = int(process.run("pid?").tool_calls[0].result)  # the same server, still running between runs
    fake.push(call("toolbox__server_pid"), Turn(text="ok"))
    assert int(process.run("pid?").tool_calls[0].result) == pid
    process.close()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


async def test_a_run_after_a_failed_start_tries_again_without_duplicating_tools(
    write_program, anthropic_env, tmp_path
):
    fake = anthropic_env
    later = tmp_path / "later.py"  # does not exist yet: the second server fails to start
    process = process_of(
        write_program,
        STDIO
        + f"[mcp.servers.later]\ncommand = {json.dumps(sys.executable)}\nargs = [{json.dumps(str(later))}]\n",
    )
    async with process:
        with pytest.raises(McpServerError, match="MCP server 'later'"):
            await process.run("first")
        later.write_text(TOOLBOX.read_text())
        fake.push(call("later__add", a=1, b=2), Turn(text="three"))
        result = await process.run("second")
        assert result.tool_calls[0].result == "3"
        names = [s.name for s in await process.tool_specs()]
        assert len(names) == len(set(names)) and "toolbox__add" in names and "later__add" in names
