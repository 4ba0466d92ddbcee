"""Real MCP hosts (Claude Code, Gemini CLI from npm) driven non-interactively against the fake
provider, with llmproc-mcp as their MCP server: how users meet the server.

`HostModel` plays the host's model on the fake: it finds the run tool under whatever name the
host gave it, calls it, reads the process_id from the result the host sent back (the text
a model sees), continues that process by id, then answers. Whatever else a host asks its
model on the side (Gemini CLI's routing questions with a JSON schema) gets a reply that fits.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fake_provider import FakeProviderServer, ScriptedToolCall, Turn

PROCESS_ID = re.compile(r"process_id\W+([\w-]{22})")
HOST_TIMEOUT = 300
"""Seconds a host run may take at most (a few seconds when the machine is quiet)."""


@dataclass
class HostModel:
    tool: str
    """The run tool's name without a host's prefix, e.g. run_counter."""
    messages: list[str] = ("first", "second")  # type: ignore[assignment]
    calls: list[dict[str, Any]] = field(default_factory=list)
    """The run tool calls made, in order, with their arguments."""
    results: list[str] = field(default_factory=list)
    """What each run tool call returned, as the host showed it to its model."""

    def __call__(self, view: Any, body: Any) -> Turn | None:
        schema = _response_schema(body)
        if schema is not None:  # a side question (Gemini CLI's router): an answer of that shape
            return Turn(text=json.dumps(_example(schema)))
        tools = _tool_names(body)
        exposed = next((t for t in tools if t.endswith(self.tool)), None)
        transcript = json.dumps(body.get("messages") or body.get("contents"))
        if exposed is None:
            if "ToolSearch" in tools and f"select:mcp__llmproc__{self.tool}" not in transcript:
                # Claude Code defers MCP tools: a model loads one with ToolSearch first
                query = {"query": f"select:mcp__llmproc__{self.tool}", "max_results": 5}
                return Turn(thinking="Load the tool.", tool_calls=(ScriptedToolCall("ToolSearch", query),))
            return Turn(text=f"the host offered no {self.tool} tool")
        done = len(self.calls)
        if done and len(self.results) < done:
            self.results.append(view.last_tool_result_text)
        if done < len(self.messages):
            arguments: dict[str, Any] = {"message": self.messages[done]}
            if done:  # continue the process by the id the model read from the first result's text
                found = PROCESS_ID.search(self.results[0])
                if found:
                    arguments["process_id"] = found.group(1)
            self.calls.append(arguments)
            return Turn(thinking="Ask the program.", tool_calls=(ScriptedToolCall(exposed, arguments),))
        return Turn(text="All done.")


def _tool_names(body: dict[str, Any]) -> list[str]:
    names = [t.get("name", "") for t in body.get("tools") or [] if "name" in t]
    for group in body.get("tools") or []:  # Gemini: tools[].functionDeclarations[]
        names += [d.get("name", "") for d in group.get("functionDeclarations") or []]
    return names


def _response_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") != "application/json":
        return None
    return config.get("responseJsonSchema") or config.get("responseSchema") or {}


def _example(schema: dict[str, Any]) -> Any:
    kind = str(schema.get("type", "object")).lower()
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: _example(properties.get(name, {})) for name in schema.get("required") or properties}
    samples = {"string": "simple", "integer": 10, "number": 1.0, "boolean": False, "array": []}
    return samples.get(kind, "simple")


def llmproc_mcp() -> str:
    found = shutil.which("llmproc-mcp")
    assert found, "llmproc-mcp is not on PATH: pip install -e ."
    return found


def stdio_server(programs: Path) -> dict[str, Any]:
    return {"command": llmproc_mcp(), "args": ["--programs", str(programs)]}


def run_claude(
    claude: str,
    home: Path,
    fake: FakeProviderServer,
    server: dict[str, Any],
    tool: str,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`claude -p` with llmproc-mcp as its only MCP server; returns its JSON result."""
    config = home / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"llmproc": server}}))
    env = {
        **os.environ,
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": fake.url,
        "ANTHROPIC_API_KEY": fake.api_key,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "MCP_CONNECTION_NONBLOCKING": "false",  # else -p may start before the server is ready
        **(extra_env or {}),
    }
    command = [
        claude, "-p", f"Use {tool} twice.", "--mcp-config", str(config), "--strict-mcp-config",
        "--allowedTools", f"mcp__llmproc__{tool}", "--output-format", "json",
    ]  # fmt: skip
    return _run_host(command, env, home)


def run_gemini(
    gemini: str, home: Path, fake: FakeProviderServer, server: dict[str, Any], tool: str
) -> dict[str, Any]:
    """`gemini -p` with llmproc-mcp in its settings.json; returns its JSON result."""
    settings = {
        "mcpServers": {"llmproc": {**server, "trust": True}},
        "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
        "telemetry": {"enabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
        "privacy": {"usageStatisticsEnabled": False},
    }
    (home / ".gemini").mkdir(exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    env = {
        **os.environ,
        "HOME": str(home),
        "GEMINI_API_KEY": fake.api_key,
        "GOOGLE_GEMINI_BASE_URL": fake.url,
    }
    command = [gemini, "-p", f"Use {tool} twice.", "--yolo", "--output-format", "json"]
    return _run_host(command, env, home)


def _run_host(command: list[str], env: dict[str, str], home: Path) -> dict[str, Any]:
    workdir = home / "work"
    workdir.mkdir(exist_ok=True)
    done = subprocess.run(
        command, env=env, cwd=workdir, capture_output=True, text=True, timeout=HOST_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(
            f"{Path(command[0]).name} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    outcome: dict[str, Any] = json.loads(done.stdout)
    outcome["host_stderr"] = done.stderr
    return outcome


def server_complaints(stderr: str) -> list[str]:
    """What a host printed against its MCP server: warnings or errors naming it, MCP, its
    prompts or its resources (Gemini CLI warned of empty prompt lists, for one)."""
    return [
        line
        for line in stderr.splitlines()
        if re.search(r"(?i)warn|error|fail", line) and re.search(r"(?i)llmproc|mcp|prompt|resource", line)
    ]
