"""Claude Code and Gemini CLI, installed from npm, run llmproc-mcp over stdio and over
Streamable HTTP with a bearer token: the host lists the tools, its model (the fake) calls
run_<name>, reads the process_id from the result's text and continues that process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fake_provider import FakeProviderServer
from hosts import HostModel, run_claude, run_gemini, stdio_server
from http_servers import serve_llmproc

TOKEN = "host-test-token-5b1e"
COUNTER = '[model]\nname = "s"\nprovider = "scripted"\n[scripted]\nreplies = ["one", "two", "three"]\n'
HOSTS: dict[str, Callable[..., dict[str, Any]]] = {"claude": run_claude, "gemini": run_gemini}


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    root = tmp_path / "programs"
    root.mkdir()
    (root / "counter.toml").write_text(COUNTER)
    return root


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
    assert len(model.calls) == 2 and len(model.results) == 2, (model.calls, model.results)
    first, second = model.results
    first_id = model.calls[1].get("process_id")
    assert first_id, f"the model could not read a process_id from the first result: {first!r}"
    assert "one" in first and first_id in first  # the reply and its process, as the model saw them
    assert "two" in second and first_id in second  # the same process, continued by its id
