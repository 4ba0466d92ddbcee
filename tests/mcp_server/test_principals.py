"""--auth-tokens: principals own their processes on every replica, in every session and era."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from helpers import COUNTER, write_programs
from http_servers import serve_llmproc
from mcp_results import text

TOKENS = {"alice": "alice-token-6f1d0c", "bob": "bob-token-91ab77"}


def hash_token(token: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.mcp", "--hash-token"],
        input=token + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    programs = write_programs(tmp_path / "programs", {"counter.toml": COUNTER})
    tokens = tmp_path / "tokens.toml"
    lines = [f'{name} = "{hash_token(token)}"' for name, token in TOKENS.items()]
    tokens.write_text("[tokens]\n" + "\n".join(lines) + "\n")
    return programs, tokens, tmp_path / "state.db"


@contextlib.asynccontextmanager
async def client(url: str, who: str, mode: str = "2026-07-28") -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKENS[who]}"}, timeout=60)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as connected:
        yield connected


def test_the_file_holds_hashes_not_tokens(setup):
    _programs, tokens, _state = setup
    text_of_file = tokens.read_text()
    assert all(token not in text_of_file for token in TOKENS.values())
    assert text_of_file.count('"sha256:') == 2


async def test_a_principal_owns_its_processes_on_every_replica_and_in_both_eras(setup):
    programs, tokens, state = setup
    common = ("--auth-tokens", str(tokens), "--state", str(state))
    for one in serve_llmproc(programs, "streamable-http", *common):
        for two in serve_llmproc(programs, "streamable-http", *common):
            async with client(one, "alice") as alice:
                first = await alice.call_tool("run_counter", {"message": "a"})
                pid = first.structured_content["process_id"]
                # without process_id, the principal's default conversation: also on replica one
                assert text(await alice.call_tool("run_counter", {"message": "b"})) == "two"
            async with client(two, "alice", mode="legacy") as alice_elsewhere:  # a 2025-era session
                listed = await alice_elsewhere.call_tool("list_processes", {})
                assert [p["process_id"] for p in listed.structured_content["processes"]] == [pid]
                again = await alice_elsewhere.call_tool("run_counter", {"message": "c"})
                assert (text(again), again.structured_content["process_id"]) == ("three", pid)
            async with client(two, "bob") as bob:
                assert (await bob.call_tool("list_processes", {})).structured_content["processes"] == []
                stolen = await bob.call_tool("run_counter", {"message": "x", "process_id": pid})
                assert stolen.is_error and text(stolen).endswith(f"unknown process '{pid}'")
                assert text(await bob.call_tool("run_counter", {"message": "y"})) == "one"  # his own
            async with client(one, "alice") as alice:  # a process only replica one has seen
                await alice.call_tool("spawn", {"program": "counter", "message": "s"})
            async with client(two, "alice") as alice_elsewhere:  # reset reaches every server's
                cleared = await alice_elsewhere.call_tool("reset", {"program": "counter"})
                assert text(cleared) == "cleared 2 processes"
                assert text(await alice_elsewhere.call_tool("run_counter", {"message": "d"})) == "one"


async def test_a_replica_that_does_not_know_a_session_answers_404(setup):
    programs, tokens, state = setup
    common = ("--auth-tokens", str(tokens), "--state", str(state))
    headers = {
        "authorization": f"Bearer {TOKENS['alice']}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "probe", "version": "1"}},
    }  # fmt: skip
    for one in serve_llmproc(programs, "streamable-http", *common):
        for two in serve_llmproc(programs, "streamable-http", *common):
            async with httpx2.AsyncClient(timeout=60) as http:
                opened = await http.post(one, json=initialize, headers=headers)
                session = opened.headers["mcp-session-id"]
                ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
                elsewhere = await http.post(two, json=ping, headers={**headers, "mcp-session-id": session})
                assert elsewhere.status_code == 404  # the client starts a new session there
                here = await http.post(one, json=ping, headers={**headers, "mcp-session-id": session})
                assert here.status_code == 200


async def test_unknown_tokens_are_refused_and_the_file_is_read_again_when_it_changes(setup):
    programs, tokens, _state = setup
    carol = "carol-token-55e0aa"
    for url in serve_llmproc(programs, "streamable-http", "--auth-tokens", str(tokens)):

        async def status(token: str, url: str = url) -> int:
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            headers = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {token}"}
            async with httpx2.AsyncClient(timeout=60) as http:
                return (await http.post(url, json=body, headers=headers)).status_code

        assert await status(carol) == 401
        assert await status(TOKENS["alice"]) != 401
        tokens.write_text(tokens.read_text() + f'carol = "{hash_token(carol)}"\n')
        deadline = time.monotonic() + 60  # read again within a second: generous for a busy machine
        while await status(carol) == 401:
            assert time.monotonic() < deadline, "carol's token was never read"
            await anyio.sleep(0.1)
        tokens.write_text("[tokens]\nalice = 'not a hash'\n")  # a broken edit keeps the principals
        assert await status(TOKENS["bob"]) != 401


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[tokens]\nalice = 'alice-token-6f1d0c'\n", 'tokens.alice must be "sha256:" and 64 hex digits'),
        ("[tokens]\n", "no [tokens] table"),
        ("alice = 1\n", "unknown key 'alice'; principals go under [tokens]"),
        ("[tokens\n", "not valid TOML"),
    ],
)
def test_a_bad_tokens_file_is_one_line_naming_the_file_and_the_key(setup, content, message):
    programs, tokens, _state = setup
    tokens.write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--transport",
         "streamable-http", "--port", "0", "--auth-tokens", str(tokens)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 3
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"llmproc-mcp: error: --auth-tokens {tokens}: ")
    assert message in line
    assert "alice-token-6f1d0c" not in line  # a token written where its hash belongs is not shown
