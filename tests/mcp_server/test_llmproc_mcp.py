"""`llmproc-mcp` as MCP hosts use it: a subprocess over stdio, Streamable HTTP and SSE, driven
by the `mcp` SDK's client."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from helpers import SCRIPTED, llmproc_mcp, server_environment
from http_servers import TOOLBOX, serve_llmproc
from llmproc.mcp_server.catalog import Catalog, CatalogError
from mcp_results import text


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    root = tmp_path / "programs"
    (root / "team").mkdir(parents=True)
    (root / "echo.toml").write_text(SCRIPTED + '[server]\ndescription = "Repeats what you say."\n')
    (root / "team" / "counter.toml").write_text(
        SCRIPTED + '[scripted]\nreplies = ["one", "two", "three", "four"]\n'
    )
    (root / "broken.toml").write_text('[model]\nname = "x"\nprovider = "antropic"\n')
    (root / "hidden.toml").write_text(SCRIPTED + "[server]\npublish = false\n")
    (root / "sleeper.toml").write_text(
        SCRIPTED
        + textwrap.dedent(
            f"""
            [scripted]
            replies = [{{tool_calls = [{{name = "toolbox__echo", arguments = {{text = "a"}}}}]}},
                       {{tool_calls = [{{name = "toolbox__sleep", arguments = {{seconds = 30}}}}]}},
                       "woke up"]
            [mcp.servers.toolbox]
            command = {json.dumps(sys.executable)}
            args = [{json.dumps(str(TOOLBOX))}]
            """
        )
    )
    return root


# -- the catalog -----------------------------------------------------------------------------------


def test_catalog_names_describes_and_leaves_out(programs: Path):
    catalog = Catalog.load(programs)
    assert sorted(catalog.programs) == ["echo", "sleeper", "team_counter"]
    assert catalog.programs["echo"].description.startswith("Repeats what you say.")
    assert catalog.programs["team_counter"].description.startswith("Ask the llmproc program 'team_counter'")
    assert list(catalog.failures) == ["broken.toml"]
    assert (
        "invalid value 'antropic' for [model] provider; did you mean 'anthropic'?"
        in catalog.failures["broken.toml"]
    )


def test_catalog_leaves_hidden_files_and_directories_alone(tmp_path: Path):
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "pyproject.toml").write_text("[project]\n")
    (tmp_path / ".taplo.toml").write_text("[formatting]\n")
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "helper.toml").write_text(SCRIPTED)
    catalog = Catalog.load(tmp_path)
    assert list(catalog.programs) == ["team_helper"] and catalog.failures == {}
    assert list(catalog.files()) == [str(tmp_path / "team" / "helper.toml")]


def test_catalog_collisions_name_both_files(tmp_path: Path):
    (tmp_path / "a_b.toml").write_text(SCRIPTED)
    (tmp_path / "a b.toml").write_text(SCRIPTED)
    with pytest.raises(
        CatalogError, match=r"'.*a b\.toml' and '.*a_b\.toml' would both be published as run_a_b"
    ):
        Catalog.load(tmp_path)


async def test_long_program_names_leave_room_for_a_hosts_prefix(tmp_path: Path):
    """Gemini CLI cut and mangled names past 64 with its prefix, then asked for approval again."""
    deep = tmp_path / "research" / "department_of_very_long_names"
    deep.mkdir(parents=True)
    (deep / "quarterly_summary_writer.toml").write_text(SCRIPTED)
    (deep / "quarterly_summary_writer_v2.toml").write_text(SCRIPTED)
    (tmp_path / "short.toml").write_text(SCRIPTED)
    names = sorted(Catalog.load(tmp_path).programs)
    assert names == sorted(Catalog.load(tmp_path).programs)  # the same on every start
    long_names = [n for n in names if n != "short"]
    assert len(set(long_names)) == 2
    for name in long_names:
        tool = f"run_{name}"
        assert len(tool) <= 44 and len("mcp__llmproc__" + tool) <= 64
        assert re.fullmatch(r"run_research_department_of_very_long_[0-9a-f]{6}", tool), tool
    async with Client(llmproc_mcp(tmp_path)) as client:
        published = {t.name for t in (await client.list_tools()).tools}
        assert {f"run_{n}" for n in names} <= published
        assert text(await client.call_tool(f"run_{long_names[0]}", {"message": "fits"})) == "fits"


def test_catalog_uses_a_linked_programs_description(tmp_path: Path):
    (tmp_path / "expert.toml").write_text(SCRIPTED)
    (tmp_path / "main.toml").write_text(
        SCRIPTED + '[tools]\nbuiltin = ["spawn"]\n[linked_programs.expert]\npath = "expert.toml"\n'
        'description = "Knows everything."\n'
    )
    assert Catalog.load(tmp_path).programs["expert"].description.startswith("Knows everything.")


def test_descriptions_read_as_sentences(tmp_path: Path):
    (tmp_path / "terse.toml").write_text(SCRIPTED + '[prompt]\nsystem_prompt = "echo"\n')
    (tmp_path / "wordy.toml").write_text(SCRIPTED + f'[prompt]\nsystem_prompt = "{"word " * 80}"\n')
    (tmp_path / "own.toml").write_text(SCRIPTED + '[server]\ndescription = "Knows everything "\n')
    programs = Catalog.load(tmp_path).programs
    assert programs["terse"].description.startswith(
        "Ask the llmproc program 'terse' (scripted s). echo. Without"
    )
    wordy = programs["wordy"].description.split("). ", 1)[1].split(" Without")[0]
    assert len(wordy) == 200 and wordy.endswith("word…")
    assert programs["own"].description.startswith("Knows everything. Without process_id")


def test_a_program_left_out_is_reported_once_on_stderr(programs: Path):
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reported = [line for line in done.stderr.splitlines() if "broken.toml" in line]
    assert len(reported) == 1, done.stderr
    assert reported[0].endswith(
        "broken.toml:3: invalid value 'antropic' for [model] provider; did you mean 'anthropic'?"
    )


MISSING = (
    "programs directory '{}' not found; give --programs the absolute path of a folder of .toml programs "
    "(`llmproc init DIR` writes one)"
)


def test_missing_directory_is_one_line_and_exit_code_3(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stderr.strip() == "llmproc-mcp: error: " + MISSING.format(tmp_path / "nope")


async def test_a_server_that_can_not_start_tells_the_host_why(tmp_path: Path):
    """A host that saw the server exit showed only "Connection closed"; the reason was in a log."""
    for mode in ("legacy", "auto"):
        try:
            async with Client(llmproc_mcp(tmp_path / "nope"), mode=mode):
                pass
        except BaseException as err:  # the SDK's task group wraps it
            found = _first(err, MCPError)
        else:
            raise AssertionError("the client connected to a server that can not start")
        assert found is not None
        assert found.error.message == "llmproc-mcp can not start: " + MISSING.format(tmp_path / "nope")


def _first(err: BaseException, kind: type[Any]) -> Any:
    """The first exception of `kind` in `err` or the groups inside it."""
    if isinstance(err, kind):
        return err
    for inner in getattr(err, "exceptions", ()):
        if (found := _first(inner, kind)) is not None:
            return found
    return None


def test_a_port_in_use_or_out_of_range_is_one_line(programs: Path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs),
             "--transport", "streamable-http", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 3
    assert (
        done.stderr.splitlines()[-1]
        == f"llmproc-mcp: error: can not listen on 127.0.0.1 port {port}: Address already in use"
    )
    assert "serving" not in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--port", "70000"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        done.stderr.splitlines()[-1]
        == "llmproc-mcp: error: argument --port: '70000' is not a port number (0 to 65535)"
    )


# -- stdio -----------------------------------------------------------------------------------------


async def test_stdio_publishes_programs_and_keeps_conversations(programs: Path):
    async with Client(llmproc_mcp(programs)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {
            "run_echo",
            "run_sleeper",
            "run_team_counter",
            "spawn",
            "reset",
            "fork",
            "list_processes",
        }
        run = tools["run_team_counter"]
        assert run.input_schema["required"] == ["message"]
        assert set(run.output_schema["properties"]) == {
            "process_id",
            "program",
            "text",
            "usage",
            "cost_usd",
            "tool_calls",
        }

        first = await client.call_tool("run_team_counter", {"message": "count"})
        second = await client.call_tool("run_team_counter", {"message": "count"})
        assert (text(first), text(second)) == ("one", "two")  # the caller's default process continues
        pid = first.structured_content["process_id"]
        assert second.structured_content["process_id"] == pid
        assert first.structured_content["program"] == "team_counter"
        assert first.structured_content["usage"]["output_tokens"] >= 1

        spawned = await client.call_tool("spawn", {"program": "team_counter", "message": "count"})
        assert text(spawned) == "one"  # a fresh process
        other = spawned.structured_content["process_id"]
        assert other != pid
        assert (
            text(await client.call_tool("run_team_counter", {"message": "c", "process_id": other})) == "two"
        )

        forked = await client.call_tool("fork", {"process_id": pid})
        copy = forked.structured_content["process_id"]
        assert (
            text(await client.call_tool("run_team_counter", {"message": "c", "process_id": copy})) == "three"
        )
        assert (
            text(await client.call_tool("run_team_counter", {"message": "c", "process_id": pid})) == "three"
        )

        cleared = await client.call_tool("reset", {"process_id": pid})
        assert text(cleared) == "cleared 1 process"
        assert text(await client.call_tool("run_team_counter", {"message": "c"})) == "one"

        listing = (await client.call_tool("list_processes", {})).structured_content
        assert {p["process_id"] for p in listing["processes"]} == {pid, other, copy}
        assert listing["programs"] == ["echo", "sleeper", "team_counter"]
        assert list(listing["unavailable_programs"]) == ["broken.toml"]


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("run_echo", {"message": "x", "process_id": "not-a-process"}, "unknown process 'not-a-process'"),
        ("run_echo", {}, "invalid arguments for run_echo: message: Field required"),
        (
            "run_echo",
            {"message": 42},
            "invalid arguments for run_echo: message: Input should be a valid string",
        ),
        (
            "run_echo",
            {"message": "x", "process_id": 7},
            "run_echo: process_id: Input should be a valid string",
        ),
        ("run_echo", {"message": "   "}, "message must not be empty"),
        ("spawn", {"program": "ecco"}, "unknown program 'ecco'; did you mean 'echo'?"),
        ("reset", {"program": "nope"}, "unknown program 'nope' (programs: echo, sleeper, team_counter)"),
        ("fork", {"process_id": "nope"}, "unknown process 'nope'"),
    ],
)
async def test_bad_requests_are_clear_errors_and_the_server_keeps_serving(programs, tool, arguments, message):
    async with Client(llmproc_mcp(programs)) as client:
        result = await client.call_tool(tool, arguments)
        assert result.is_error
        assert message in text(result)
        assert "pydantic" not in text(result)
        assert text(await client.call_tool("run_echo", {"message": "still here"})) == "still here"


async def test_a_process_of_another_program_is_refused(programs: Path):
    async with Client(llmproc_mcp(programs)) as client:
        first = await client.call_tool("run_echo", {"message": "hi"})
        pid = first.structured_content["process_id"]
        result = await client.call_tool("run_team_counter", {"message": "x", "process_id": pid})
        assert result.is_error and f"process '{pid}' runs program 'echo'; call run_echo" in text(result)


async def test_progress_is_reported_and_cancelling_keeps_the_history(programs: Path):
    updates: list[tuple[float, str | None]] = []

    sleeping = anyio.Event()

    async def progress(done: float, total: float | None, message: str | None) -> None:
        updates.append((done, message))
        if message == "calling tool toolbox__sleep":
            sleeping.set()

    async with Client(llmproc_mcp(programs)) as client:
        with anyio.fail_after(120):  # the second model turn sleeps in an MCP tool for 30 s
            async with anyio.create_task_group() as group:
                group.start_soon(
                    lambda: client.call_tool("run_sleeper", {"message": "go"}, progress_callback=progress)
                )
                await sleeping.wait()  # cancel once it sleeps, however long the way there took
                group.cancel_scope.cancel()
        messages = [m for _, m in updates]
        assert "calling tool toolbox__echo" in messages
        assert any(m and m.startswith("model turn 1 done (") for m in messages)
        assert "calling tool toolbox__sleep" in messages
        listing = (await client.call_tool("list_processes", {})).structured_content
        (process,) = listing["processes"]
        assert process["messages"] == 0 and process["turns"] == 0  # the cancelled run left nothing behind


# -- HTTP ------------------------------------------------------------------------------------------


@pytest.fixture
def http_server(programs: Path) -> Iterator[str]:
    yield from serve_llmproc(programs, "streamable-http")


@pytest.fixture
def sse_server(programs: Path) -> Iterator[str]:
    yield from serve_llmproc(programs, "sse")


def _answer(server: subprocess.Popen) -> bytes:
    """The next line that is not a notification (a run tells of new resources first)."""
    assert server.stdout is not None
    while b'"method":"notifications/' in (line := server.stdout.readline()):
        pass
    return line


def _send(server: subprocess.Popen, message: dict[str, Any]) -> None:
    assert server.stdin is not None
    server.stdin.write((json.dumps(message) + "\n").encode())
    server.stdin.flush()


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_stdio_server_while_stdin_is_open(programs: Path, tmp_path: Path, signal_name: str):
    """Claude Code stops its servers with SIGINT, then SIGTERM: a server that waited for stdin to
    close was still running 10 s later. The run in flight is cancelled, its MCP server stopped,
    and the state database closed, with the finished turn kept."""
    import signal
    import time

    from server_thread import descendants

    state = tmp_path / "state.db"
    server = subprocess.Popen(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--state", str(state)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        hello = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "h", "version": "0"},
        }
        _send(server, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
        assert server.stdout is not None and b'"id":1' in server.stdout.readline()
        _send(server, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"jsonrpc": "2.0", "method": "tools/call"}
        _send(server, {**call, "id": 2, "params": {"name": "run_echo", "arguments": {"message": "kept"}}})
        assert b'"id":2' in _answer(server)
        _send(server, {**call, "id": 3, "params": {"name": "run_sleeper", "arguments": {"message": "go"}}})
        deadline = time.monotonic() + 60
        while not (children := descendants(server.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)  # the sleeper's MCP server has started: the run is in flight
        assert children, "the run never started its MCP server"
        started = time.monotonic()
        server.send_signal(getattr(signal, signal_name))
        code = server.wait(60)
        took = time.monotonic() - started
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate()  # reaps it and closes its pipes
    assert code == 128 + getattr(signal, signal_name)
    print(f"{signal_name} to exit: {took:.2f} s")
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)  # no MCP server left behind
    with sqlite3.connect(state) as db:  # closed cleanly: it opens, with the finished turn only
        assert sorted(db.execute("SELECT turns, length FROM processes").fetchall()) == [(0, 0), (1, 2)]


def test_provider_sdks_are_loaded_once_the_server_serves_before_any_call(tmp_path: Path):
    """The first call paid for importing the provider's SDK (1.8 s for Anthropic's): hosts that
    time a first tool call, or give up on a slow one, saw it."""
    (tmp_path / "claude.toml").write_text('[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n')
    server = subprocess.Popen(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(tmp_path), "--log-level", "INFO"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        client = {"name": "host", "version": "0"}
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client}
        _send(server, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
        assert server.stdout is not None and b'"id":1' in server.stdout.readline()  # answered first
        assert server.stderr is not None
        lines = iter(server.stderr.readline, b"")  # ends with the server, never a wall-clock deadline
        ready = next((line for line in lines if b"provider SDKs loaded" in line), b"")
        assert re.search(rb"provider SDKs loaded in [\d.]+ s: anthropic$", ready.strip()), ready
    finally:
        server.kill()
        server.communicate()


async def test_http_sessions_own_their_processes(http_server: str):
    async with Client(http_server, mode="legacy") as alice, Client(http_server, mode="legacy") as bob:
        first = await alice.call_tool("run_team_counter", {"message": "c"})
        assert text(await alice.call_tool("run_team_counter", {"message": "c"})) == "two"
        pid = first.structured_content["process_id"]
        stolen = await bob.call_tool("run_team_counter", {"message": "c", "process_id": pid})
        assert stolen.is_error and text(stolen).endswith(f"unknown process '{pid}'")
        assert text(await bob.call_tool("run_team_counter", {"message": "c"})) == "one"  # bob's own default
        assert (await bob.call_tool("list_processes", {})).structured_content["processes"][0][
            "process_id"
        ] != pid


async def test_http_without_sessions_continues_by_process_id(http_server: str):
    async with Client(http_server) as client:  # the 2026-07-28 protocol: no HTTP session
        assert client.protocol_version == "2026-07-28"
        first = await client.call_tool("run_team_counter", {"message": "c"})
        again = await client.call_tool("run_team_counter", {"message": "c"})
        assert (text(first), text(again)) == ("one", "one")  # each call without process_id is new
        pid = first.structured_content["process_id"]
        assert text(await client.call_tool("run_team_counter", {"message": "c", "process_id": pid})) == "two"


async def test_sse_connections_own_their_processes(sse_server: str):
    async with Client(sse_client(sse_server)) as alice, Client(sse_client(sse_server)) as bob:
        first = await alice.call_tool("run_team_counter", {"message": "c"})
        assert text(await alice.call_tool("run_team_counter", {"message": "c"})) == "two"
        pid = first.structured_content["process_id"]
        stolen = await bob.call_tool("run_team_counter", {"message": "c", "process_id": pid})
        assert stolen.is_error


async def test_bearer_token_and_host_checks(programs: Path):
    for url in serve_llmproc(programs, "streamable-http", "--auth-token", "s3cret"):
        async with httpx2.AsyncClient() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            refused = await http.post(
                url, json=body, headers={"accept": "application/json, text/event-stream"}
            )
            assert refused.status_code == 401
            assert "s3cret" not in refused.text
            wrong = await http.post(url, json=body, headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401
            rebinding = await http.post(
                url, json=body, headers={"authorization": "Bearer s3cret", "host": "evil.example:80"}
            )
            assert rebinding.status_code == 421
        authorized = httpx2.AsyncClient(headers={"authorization": "Bearer s3cret"})
        async with authorized, Client(streamable_http_client(url, http_client=authorized)) as client:
            assert text(await client.call_tool("run_echo", {"message": "let me in"})) == "let me in"


async def test_a_provider_program_over_the_server(tmp_path: Path, anthropic_env):
    from fake_provider import Fault, Turn

    fake = anthropic_env
    (tmp_path / "claude.toml").write_text(
        '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\n'
        '[prompt]\nsystem_prompt = "Be brief."\n'
    )
    fake.push(Turn(text="Hello from the fake Claude."))
    env = {"ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.url}
    params = llmproc_mcp(tmp_path)
    params.env = {**(params.env or {}), **env}
    async with Client(params) as client:
        result = await client.call_tool("run_claude", {"message": "Hi"})
        assert text(result) == "Hello from the fake Claude."
        assert result.structured_content["cost_usd"] > 0
        fake.push(Fault(status=401, error_type="authentication_error", message="bad key"))
        failed = await client.call_tool("run_claude", {"message": "again"})
        assert failed.is_error and "bad key" in text(failed)
        assert fake.api_key not in text(failed)

        # a spawn whose first message fails leaves no process the caller could not name
        fake.push(Fault(status=500, error_type="api_error", message="down"))
        spawned = await client.call_tool("spawn", {"program": "claude", "message": "Hi"})
        assert spawned.is_error and "down" in text(spawned)
        listing = (await client.call_tool("list_processes", {})).structured_content
        assert [p["program"] for p in listing["processes"]] == ["claude"]  # the default one only
        assert listing["processes"][0]["turns"] == 1


# -- what ships for hosts and clients --------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_claude_desktop_config_runs_llmproc_mcp_on_the_programs(tmp_path: Path):
    config = json.loads((ROOT / "claude_desktop_config.json").read_text())
    entry = config["mcpServers"]["llmproc"]
    assert entry["command"] == "llmproc-mcp"
    assert entry["args"][0] == "--programs" and entry["args"][1].endswith("/programs")
    assert {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"} <= set(entry["env"])
    # the same file is a valid [mcp] config_path for llmproc programs, which read this format
    (tmp_path / "p.toml").write_text(
        SCRIPTED + f'[mcp]\nconfig_path = "{ROOT / "claude_desktop_config.json"}"\n'
    )
    from llmproc import LLMProgram

    assert LLMProgram.from_toml(tmp_path / "p.toml").mcp_servers["llmproc"].command == "llmproc-mcp"


async def test_claude_desktop_config_starts_as_a_host_starts_it():
    """What a newcomer pastes: the command on PATH, the programs path filled in, the env block as
    given (placeholder keys included); the host lists the tools and a program answers."""
    entry = json.loads((ROOT / "claude_desktop_config.json").read_text())["mcpServers"]["llmproc"]
    command = shutil.which(
        entry["command"], path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    )
    assert command is not None, "llmproc-mcp is not installed as a console script"
    args = [str(ROOT / "programs") if arg.endswith("/programs") else arg for arg in entry["args"]]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        **server_environment(),
        **entry["env"],
    }
    async with Client(StdioServerParameters(command=command, args=args, env=env), mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"run_scripted", "run_minimal", "run_openai", "run_gemini", "spawn", "reset"} <= names
        reply = await client.call_tool("run_scripted", {"message": "Hello"})
        assert not reply.is_error and "scripted model" in text(reply)
        keyless = await client.call_tool("run_minimal", {"message": "Hello"})  # a key not filled in
        assert (
            keyless.is_error
            and "needs an API key: set the environment variable ANTHROPIC_API_KEY" in text(keyless)
        )
    placeholder = {
        **env,
        "ANTHROPIC_API_KEY": "sk-ant-...",
        "OPENAI_API_KEY": "your OpenAI key, for the openai",
    }
    async with Client(StdioServerParameters(command=command, args=args, env=placeholder)) as client:
        for tool, name in (("run_minimal", "ANTHROPIC_API_KEY"), ("run_openai", "OPENAI_API_KEY")):
            refused = await client.call_tool(tool, {"message": "Hello"})  # never sent as a key
            assert refused.is_error and f"{name} holds a placeholder (" in text(refused), text(refused)


def test_stdio_client_example_runs():
    done = subprocess.run(
        [sys.executable, str(ROOT / "client_examples" / "stdio_client.py")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "run_scripted" in lines[0] and "list_processes" in lines[0]
    assert lines[1] == "reply: Hello! I am a scripted model: my replies come from programs/scripted.toml."
    assert lines[4].startswith("process: ")


def test_http_client_example_runs_with_a_token():
    for url in serve_llmproc(ROOT / "programs", "streamable-http", "--auth-token", "t0ken"):
        done = subprocess.run(
            [sys.executable, str(ROOT / "client_examples" / "http_client.py"), url],
            capture_output=True, text=True, timeout=120, env={**os.environ, "LLMPROC_MCP_TOKEN": "t0ken"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "protocol: 2026-07-28"
        assert lines[1].startswith("reply: Hello! I am a scripted model")
        assert "scripted" in lines[3]


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # a handshake, or server/discover (2026-07-28)
async def test_only_what_is_served_is_advertised(programs: Path, mode: str):
    """Empty prompt and resource capabilities made Gemini CLI warn that it found nothing there:
    what is declared has something in it (the process list; a prompt per program)."""
    async with Client(llmproc_mcp(programs), mode=mode) as client:
        capabilities = client.server_capabilities
        assert capabilities.prompts is not None and capabilities.resources is not None
        assert capabilities.tools is not None and capabilities.completions is not None
        assert capabilities.logging is None
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        assert listed[0] == "llmproc://processes"
        assert "echo" in [p.name for p in (await client.list_prompts()).prompts]


# -- reloading -------------------------------------------------------------------------------------


async def test_changed_programs_are_reloaded_and_clients_told(programs: Path):
    legacy_heard = anyio.Event()

    async def legacy_message(message: Any) -> None:
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/tools/list_changed":
            legacy_heard.set()

    fast = ("--reload-interval", "0.2")
    legacy_client = Client(llmproc_mcp(programs, *fast), mode="legacy", message_handler=legacy_message)
    async with Client(llmproc_mcp(programs, *fast)) as modern, legacy_client as legacy:
        for client in (modern, legacy):  # hosts listen only to servers that declare the notification
            tools = client.server_capabilities.tools
            assert tools is not None and tools.list_changed
        await legacy.call_tool("run_echo", {"message": "hi"})  # the server learns this client's session
        async with modern.listen(tools_list_changed=True) as subscription:
            (programs / "added.toml").write_text(SCRIPTED + '[server]\ndescription = "New here."\n')
            (programs / "echo.toml").unlink()
            with anyio.fail_after(20):
                async for _event in subscription:
                    break
        names = {t.name for t in (await modern.list_tools()).tools}
        assert "run_added" in names and "run_echo" not in names
        with anyio.fail_after(20):
            await legacy_heard.wait()
        assert "run_added" in {t.name for t in (await legacy.list_tools()).tools}
        result = await modern.call_tool("run_added", {"message": "works"})
        assert text(result) == "works"


# -- the host's own model --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # a sampling request, or input_required rounds
async def test_mcp_sampling_asks_the_client_with_tools(tmp_path: Path, mode: str):
    import mcp_types as types

    (tmp_path / "host_model.toml").write_text((ROOT / "programs" / "host_model.toml").read_text())
    seen: list[types.CreateMessageRequestParams] = []

    async def sample(context: Any, params: types.CreateMessageRequestParams) -> Any:
        seen.append(params)
        last = params.messages[-1].content
        blocks = last if isinstance(last, list) else [last]
        if any(b.type == "tool_result" for b in blocks):
            result_text = next(b for b in blocks if b.type == "tool_result").content[0].text
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text=f"It is {result_text}."),
                model="host-model", stop_reason="endTurn",
            )  # fmt: skip
        return types.CreateMessageResultWithTools(
            role="assistant",
            content=[
                types.ToolUseContent(type="tool_use", id="t1", name="calculator", input={"expression": "6*7"})
            ],
            model="host-model",
            stop_reason="toolUse",
        )

    client = Client(
        llmproc_mcp(tmp_path), mode=mode, sampling_callback=sample,
        sampling_capabilities=types.SamplingCapability(tools=types.SamplingToolsCapability()),
    )  # fmt: skip
    async with client:
        result = await client.call_tool("run_host_model", {"message": "What is 6 times 7?"})
    assert not result.is_error, text(result)
    assert text(result) == "It is 42."
    assert result.structured_content["cost_usd"] is None  # the host's model reports no usage
    assert result.structured_content["tool_calls"][0]["result"] == "42"
    first = seen[0]
    assert first.system_prompt.startswith("You are a concise assistant.")
    assert [t.name for t in first.tools] == ["calculator"]
    assert first.model_preferences.hints[0].name == "claude-sonnet-4-6"
    assert first.max_tokens == 1024


async def test_mcp_sampling_without_sampling_is_a_clear_error(tmp_path: Path):
    (tmp_path / "host_model.toml").write_text((ROOT / "programs" / "host_model.toml").read_text())
    async with Client(llmproc_mcp(tmp_path), mode="legacy") as client:
        result = await client.call_tool("run_host_model", {"message": "hi"})
    assert result.is_error
    assert "the MCP client did not offer sampling, which provider 'mcp_sampling' needs" in text(result)

    async with Client(llmproc_mcp(tmp_path)) as modern:  # 2026-07-28, no sampling offered either
        result = await modern.call_tool("run_host_model", {"message": "hi"})
    assert result.is_error
    assert "the MCP client did not offer sampling" in text(result)


def test_mcp_sampling_outside_the_server_is_a_clear_error(tmp_path: Path):
    from llmproc import LLMProcess, ProviderError

    process = LLMProcess.from_toml(ROOT / "programs" / "host_model.toml")
    with pytest.raises(ProviderError, match="runs only inside llmproc-mcp"):
        process.run("hi")
    assert process.messages == ()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_log_records_of_a_run_reach_the_client(tmp_path: Path, mode: str):
    (tmp_path / "tooled.toml").write_text(
        SCRIPTED
        + '[scripted]\nreplies = [{tool_calls = [{name = "toolbox__echo", arguments = {text = "a"}}]},'
        + ' "done"]\n'
        + f"[mcp.servers.toolbox]\ncommand = {json.dumps(sys.executable)}\n"
        + f"args = [{json.dumps(str(TOOLBOX))}]\n"
    )
    records: list[tuple[str, Any]] = []

    async def on_log(params: Any) -> None:
        records.append((params.level, params.data))

    async with Client(llmproc_mcp(tmp_path), mode=mode, logging_callback=on_log, log_level="info") as client:
        result = await client.call_tool("run_tooled", {"message": "go"})
        assert text(result) == "done"
    assert any(level == "info" and "MCP server 'toolbox' started" in str(data) for level, data in records), (
        records
    )


def test_composition_client_example_runs():
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    done = subprocess.run(
        [sys.executable, str(ROOT / "client_examples" / "composition.py")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()[1:]
    assert lines[0] == "the front program called: experts__run_shouter"
    assert re.fullmatch(
        r"the inner server answered: HELLO FROM THE EXPERT ON THE INNER SERVER! \[process_id: [\w-]{22}\]",
        lines[1],
    ), lines[1]  # the model of the front program is told the inner process's id
    assert lines[2:] == ["reply: The expert on the other server answered."]


def test_every_shipped_program_is_published():
    catalog = Catalog.load(ROOT / "programs")
    assert catalog.failures == {}
    assert "reference" not in catalog.programs  # [server] publish = false
    assert {"scripted", "minimal", "program_linking_main", "composition_front_desk", "host_model"} <= set(
        catalog.programs
    )
