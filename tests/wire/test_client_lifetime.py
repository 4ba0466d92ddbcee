"""Provider clients (aiohttp pools under all three SDKs) are closed with their event loop:
a script that runs a process and ends, under `asyncio.run` or from plain synchronous code,
prints nothing but its reply (no "Unclosed client session" from the garbage collector)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from fake_provider import FakeProviderServer
from provider_harness import ROUTES, make_harness

ASYNC_SCRIPT = """
import asyncio, sys
from llmproc import LLMProcess

async def main():
    process = LLMProcess.from_toml(sys.argv[1])
    print((await process.run("hello")).text)
    print((await process.run("again")).text)

asyncio.run(main())
asyncio.run(main())  # a second loop: its own clients, closed in turn
"""

SYNC_SCRIPT = """
import sys
from llmproc import LLMProcess

process = LLMProcess.from_toml(sys.argv[1])
print(process.run("hello").text)
print(process.run("again").text)
"""


@pytest.mark.parametrize("script", [ASYNC_SCRIPT, SYNC_SCRIPT], ids=["asyncio.run", "sync"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_script_that_ends_leaves_no_unclosed_connection(
    route: str, script: str, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, write_program
) -> None:
    harness = make_harness(route, fake, monkeypatch)
    program = write_program(harness.program())
    env = {**os.environ, "PYTHONWARNINGS": "always::ResourceWarning", "PYTHONDEVMODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), str(program)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    replies = done.stdout.split("\n")
    assert len([r for r in replies if r]) >= 2 and len(fake.requests) >= 2
    assert "Unclosed" not in done.stderr and "ResourceWarning" not in done.stderr, done.stderr
