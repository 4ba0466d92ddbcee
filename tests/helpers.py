"""What many tests share: scripted model turns, small program texts, a programs directory,
llmproc-mcp over stdio, and waiting on a condition with a generous deadline (never a fixed sleep).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp.client.stdio import StdioServerParameters

from fake_provider import ScriptedToolCall, Turn

SCRIPTED = '[model]\nname = "s"\nprovider = "scripted"\n'
"""A program whose model is the scripted one, echoing what it is told."""
COUNTER = SCRIPTED + '[scripted]\nreplies = ["one", "two", "three", "four"]\n'
"""A scripted program that answers one, two, three, four: which turn a conversation is at."""
HOST_MODEL = '[model]\nname = "host"\nprovider = "mcp_sampling"\n'
"""A program whose model is the MCP client's own."""
CLAUDE = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\n'
"""An Anthropic program, for the fake provider (the `anthropic_env` fixture)."""


def call(name: str, **arguments: Any) -> Turn:
    """A model turn of the fake provider that calls one tool."""
    return Turn(tool_calls=(ScriptedToolCall(name, arguments),))


def system_text(body: dict[str, Any]) -> str:
    """The system prompt of an Anthropic request body, as one string."""
    system = body.get("system") or ""
    return system if isinstance(system, str) else "".join(b.get("text", "") for b in system)


def write_programs(root: Path, programs: dict[str, str]) -> Path:
    """A programs directory holding `programs` (relative file name -> TOML text)."""
    for name, text in programs.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def llmproc_mcp(programs: Path, *extra: str) -> StdioServerParameters:
    """llmproc-mcp publishing `programs`, started over stdio by the client."""
    args = ["-m", "llmproc.cli.mcp", "--programs", str(programs), *extra]
    return StdioServerParameters(command=sys.executable, args=args, env=server_environment())


def server_environment() -> dict[str, str]:
    """What a stdio server needs from the test's environment beyond the SDK's few defaults: the
    test's own state directory (llmproc-mcp keeps its state under it by default)."""
    return {"XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]}


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Return as soon as `condition()` holds; fail after `timeout` seconds (generous: CI is busy)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g}s for {what}")
        await asyncio.sleep(0.02)
