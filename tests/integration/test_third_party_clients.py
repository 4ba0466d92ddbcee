"""llmproc-mcp with clients that are not ours: the MCP Inspector's CLI and a script on the
official TypeScript SDK, over stdio and Streamable HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_servers import serve_llmproc

ROOT = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(ROOT / "programs")]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=ROOT)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    yield from serve_llmproc(ROOT / "programs", "streamable-http", "--auth-token", "inspect-me")


def test_inspector_lists_and_calls_over_stdio(inspector_cli):
    listed = run([*inspector_cli, *SERVER, "--method", "tools/list"])
    assert listed.returncode == 0, listed.stderr
    tools = {t["name"]: t for t in json.loads(listed.stdout)["tools"]}
    assert {"run_scripted", "spawn", "reset", "fork", "list_processes"} <= set(tools)
    assert tools["run_scripted"]["outputSchema"]["required"] == [
        "process_id", "program", "text", "usage", "cost_usd", "tool_calls"
    ]  # fmt: skip
    called = run(
        [
            *inspector_cli,
            *SERVER,
            "--method",
            "tools/call",
            "--tool-name",
            "run_scripted",
            "--tool-arg",
            "message=Hi",
        ]
    )
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert result["isError"] is False
    assert result["content"][0]["text"].startswith("Hello! I am a scripted model")
    assert result["structuredContent"]["program"] == "scripted"


def test_inspector_over_http_with_the_bearer_token(inspector_cli, http_url):
    base = [*inspector_cli, http_url, "--transport", "http"]
    called = run(
        [*base, "--header", "Authorization: Bearer inspect-me", "--method", "tools/call",
         "--tool-name", "spawn", "--tool-arg", "program=scripted", "--tool-arg", "message=Hi"]
    )  # fmt: skip
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["structuredContent"]["text"].startswith("Hello! I am a scripted model")
    refused = run([*base, "--header", "Authorization: Bearer wrong", "--method", "tools/list"])
    assert refused.returncode != 0  # the inspector saw the 401 and asks for authorization
    assert "auth" in (refused.stdout + refused.stderr).lower() and "run_scripted" not in refused.stdout


@pytest.mark.parametrize("kind", ["stdio", "http"])
def test_typescript_sdk_client(ts_client, kind, request):
    target = SERVER if kind == "stdio" else [request.getfixturevalue("http_url"), "inspect-me"]
    done = run([*ts_client, kind, *target])
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert "run_scripted" in seen["tools"] and "list_processes" in seen["tools"]
    assert seen["outputSchema"]["properties"]["process_id"]["type"] == "string"
    assert seen["first"]["text"].startswith("Hello! I am a scripted model")
    assert seen["second"]["process_id"] == seen["first"]["structured"]["process_id"]
    assert seen["second"]["text"].startswith("Edit [scripted] replies")  # the same conversation, turn two
    assert seen["bad"] == {
        "isError": True,
        "text": "Error executing tool run_scripted: unknown process 'nope'",
    }


@pytest.mark.parametrize("kind", ["stdio", "http"])
def test_typescript_sdk_client_reads_resources_and_prompts(ts_client, kind, request):
    script = [ts_client[0], str(Path(ts_client[1]).with_name("ts_resources.mjs"))]
    target = SERVER if kind == "stdio" else [request.getfixturevalue("http_url"), "inspect-me"]
    done = run([*script, kind, *target])
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["capabilities"]["resources"] == {"subscribe": True, "listChanged": True}
    assert seen["capabilities"]["prompts"] == {"listChanged": True}
    assert (
        seen["link"]["uri"].startswith("llmproc://processes/") and seen["link"]["mimeType"] == "text/markdown"
    )
    assert "## User\n\nHello" in seen["transcript"] and "Hello! I am a scripted model" in seen["transcript"]
    assert "llmproc://processes" in seen["resources"] and seen["link"]["uri"] in seen["resources"]
    assert "llmproc://programs/scripted" in seen["resources"]
    assert "llmproc://processes/{process_id}/tree" in seen["templates"]
    assert {"scripted", "spawn"} <= set(seen["prompts"])
    assert "`run_scripted`" in seen["prompt"] and seen["prompt"].endswith("Hi")
    assert seen["completed"] == ["scripted"]


def test_inspector_reads_resources_and_gets_prompts_over_stdio(inspector_cli):
    listed = run([*inspector_cli, *SERVER, "--method", "resources/list"])
    assert listed.returncode == 0, listed.stderr
    uris = [r["uri"] for r in json.loads(listed.stdout)["resources"]]
    assert uris[0] == "llmproc://processes" and "llmproc://programs/scripted" in uris
    read = run(
        [*inspector_cli, *SERVER, "--method", "resources/read", "--uri", "llmproc://programs/scripted"]
    )
    assert read.returncode == 0, read.stderr
    toml, about = json.loads(read.stdout)["contents"]
    assert toml["mimeType"] == "application/toml" and "[model]" in toml["text"]
    assert json.loads(about["text"])["tool"] == "run_scripted"
    prompts = run([*inspector_cli, *SERVER, "--method", "prompts/list"])
    assert prompts.returncode == 0, prompts.stderr
    assert "scripted" in [p["name"] for p in json.loads(prompts.stdout)["prompts"]]
    got = run(
        [
            *inspector_cli,
            *SERVER,
            "--method",
            "prompts/get",
            "--prompt-name",
            "scripted",
            "--prompt-args",
            "message=Hi",
        ]
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["messages"][0]["content"]["text"].endswith("Hi")
