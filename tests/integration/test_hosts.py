"""Claude Code and Gemini CLI, installed from npm, run llmproc-mcp over stdio and over
Streamable HTTP with a bearer token: the host lists the tools, its model (the fake) calls
run_<name>, reads the process_id from the result's text and continues that process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fake_provider import FakeProviderServer
from helpers import COUNTER, SCRIPTED, write_programs
from hosts import HostModel, run_claude, run_gemini, server_complaints, stdio_server
from http_servers import TOOLBOX, serve_llmproc

TOKEN = "host-test-token-5b1e"
HOSTS: dict[str, Callable[..., dict[str, Any]]] = {"claude": run_claude, "gemini": run_gemini}


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    return write_programs(tmp_path / "programs", {"counter.toml": COUNTER})


def http_server(host: str, url: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if host == "claude":
        return {"type": "http", "url": url, "headers": headers}
    return {"httpUrl": url, "headers": headers}


@pytest.mark.parametrize("transport", ["stdio", "streamable-http"])
@pytest.mark.parametrize("host", ["claude", "gemini"])
def test_a_real_host_runs_a_program_and_continues_it_by_process_id(
    host: str, transport: str, programs: Path, tmp_path: Path, request: pytest.FixtureRequest
):
    binary = request.getfixturevalue("claude_code" if host == "claude" else "gemini_cli")
    model = HostModel("run_counter")
    with FakeProviderServer() as fake:
        fake.responder = model
        home = tmp_path / "home"
        home.mkdir()
        if transport == "stdio":
            outcome = HOSTS[host](binary, home, fake, stdio_server(programs), "run_counter")
        else:
            for url in serve_llmproc(programs, "streamable-http", "--auth-token", TOKEN):
                outcome = HOSTS[host](binary, home, fake, http_server(host, url), "run_counter")
    final = outcome.get("result", outcome.get("response"))
    assert final == "All done.", outcome
    assert server_complaints(outcome["host_stderr"]) == []  # it took the tools, resources, prompts
    assert len(model.calls) == 2 and len(model.results) == 2, (model.calls, model.results)
    first, second = model.results
    first_id = model.calls[1].get("process_id")
    assert first_id, f"the model could not read a process_id from the first result: {first!r}"
    assert "one" in first and first_id in first  # the reply and its process, as the model saw them
    assert "two" in second and first_id in second  # the same process, continued by its id


def test_claude_code_keeps_waiting_on_a_long_silent_run_because_of_the_heartbeats(
    tmp_path: Path, claude_code: str
):
    """Claude Code aborts a tool call that sends "no response or progress" for longer than its
    idle timeout (CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT, checked every 30 s). A run that waits 40 s
    on a silent tool outlives a 5 s idle timeout with heartbeats, and is aborted without them."""
    slow = SCRIPTED + textwrap.dedent(
        f"""
        [scripted]
        replies = [{{tool_calls = [{{name = "toolbox__sleep", arguments = {{seconds = 40}}}}]}}, "woke up"]
        [mcp.servers.toolbox]
        command = {json.dumps(sys.executable)}
        args = [{json.dumps(str(TOOLBOX))}]
        """
    )
    programs = write_programs(tmp_path / "programs", {"slow.toml": slow})
    idle = {"CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT": "5000"}
    seen = {}
    for heartbeat in ("2", "0"):
        model = HostModel("run_slow", messages=("go",))
        home = tmp_path / f"home-{heartbeat}"
        home.mkdir()
        server = stdio_server(programs)
        server["args"] += ["--heartbeat", heartbeat]
        with FakeProviderServer() as fake:
            fake.responder = model
            outcome = run_claude(claude_code, home, fake, server, "run_slow", idle)
        assert outcome.get("result") == "All done.", outcome
        (seen[heartbeat],) = model.results
    assert "woke up" in seen["2"] and "sent no response or progress" not in seen["2"], seen["2"]
    assert "sent no response or progress" in seen["0"], seen["0"]  # the idle timeout did fire


def readme_host_commands() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return [line for line in readme.splitlines() if line.startswith("claude mcp add ")]


@pytest.mark.parametrize("command", readme_host_commands(), ids=["stdio", "http"])
def test_the_readmes_claude_code_commands_add_a_server_that_connects(
    command: str, programs: Path, tmp_path: Path, claude_code: str
):
    """`--env` is variadic: written before the server's name it took the name as a variable."""
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    env = {
        **os.environ, "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "LLMPROC_MCP_TOKEN": TOKEN, "PATH": str(Path(claude_code).parent) + os.pathsep + os.environ["PATH"],
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }  # fmt: skip

    def claude(line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", line], env=env, cwd=home / "work", capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip

    def add_and_get(line: str) -> str:
        added = claude(line)
        assert added.returncode == 0, added.stdout + added.stderr
        shown = claude("claude mcp get llmproc")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        return shown.stdout

    line = command.replace("/path/to/programs", str(programs))
    if "--transport http" not in line:
        shown = add_and_get(line)
        assert "Connected" in shown and f"Args: --programs {programs}" in shown, shown
        assert "ANTHROPIC_API_KEY=sk-ant-..." in shown
        return
    for url in serve_llmproc(programs, "streamable-http", "--auth-token", TOKEN):
        shown = add_and_get(line.replace("http://127.0.0.1:8000/mcp", url))
        assert "Connected" in shown and url in shown, shown
