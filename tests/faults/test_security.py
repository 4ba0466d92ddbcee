"""The HTTP front door on both transports: the bearer token, and Host/Origin checks against
DNS rebinding, hold for every kind of request, and a refusal never echoes the secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from helpers import SCRIPTED, write_programs
from http_servers import serve_llmproc

TOKEN = "tok-4f1d9c2b7e"
ACCEPT = {"accept": "application/json, text/event-stream"}


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    return write_programs(tmp_path, {"echo.toml": SCRIPTED})


async def probe(http: httpx2.AsyncClient, url: str, transport: str, headers: dict[str, str]) -> int:
    """The status of the transport's opening request: a POST of ping, or the SSE stream's GET."""
    if transport == "sse":
        async with http.stream("GET", url, headers={**headers, "accept": "text/event-stream"}) as response:
            return response.status_code
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    response = await http.post(url, json=body, headers={**ACCEPT, **headers})
    assert TOKEN not in response.text
    return response.status_code


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_token_host_and_origin_hold_on_both_http_transports(programs, transport):
    for url in serve_llmproc(programs, transport, "--auth-token", TOKEN):
        good = {"authorization": f"Bearer {TOKEN}"}
        async with httpx2.AsyncClient(timeout=10) as http:
            assert await probe(http, url, transport, {}) == 401
            assert await probe(http, url, transport, {"authorization": "Bearer wrong"}) == 401
            assert await probe(http, url, transport, {"authorization": TOKEN}) == 401  # no scheme
            assert await probe(http, url, transport, {**good, "host": "evil.example"}) in (400, 421)
            assert await probe(http, url, transport, {**good, "origin": "http://evil.example"}) in (400, 403)
            own_origin = str(httpx2.URL(url).copy_with(path="/"))[:-1]  # http://127.0.0.1:PORT
            # past the front door (a bare ping may still be refused by the protocol layer: 400)
            assert await probe(http, url, transport, {**good, "origin": own_origin}) not in (401, 403, 421)


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_the_bearer_scheme_is_case_insensitive_and_one_authorization_header_is_required(
    programs, transport
):
    for url in serve_llmproc(programs, transport, "--auth-token", TOKEN):
        async with httpx2.AsyncClient(timeout=10) as http:
            for scheme in ("bearer", "BEARER", "Bearer"):  # RFC 7235: the scheme is case-insensitive
                status = await probe(http, url, transport, {"authorization": f"{scheme} {TOKEN}"})
                assert status != 401, scheme  # past the token check (a bare ping may still get 400)
            twice = httpx2.Headers([("authorization", "Bearer wrong"), ("authorization", f"Bearer {TOKEN}")])
            headers = httpx2.Headers([*twice.multi_items(), *ACCEPT.items()])
            response = await http.post(
                url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers
            )
            assert response.status_code == 400
            assert response.json() == {"error": "bad request: more than one Authorization header"}


def test_no_unauthenticated_listening_beyond_loopback_unless_asked(programs):
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs),
         "--transport", "streamable-http", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=120, env={k: v for k, v in os.environ.items()
                                                          if k != "LLMPROC_MCP_TOKEN"},
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stderr.strip() == (
        "llmproc-mcp: error: --host 0.0.0.0 can be reached from other machines, and no --auth-token "
        "is set (or LLMPROC_MCP_TOKEN, or --auth-tokens); set one, or pass --allow-no-auth to serve "
        "anyone who can reach it"
    )


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_host_and_origin_are_checked_on_every_bind_address(programs, transport):
    """The SDK checks them for loopback binds only: on 0.0.0.0 a DNS-rebinding page got 200."""
    extra = ("--host", "0.0.0.0", "--allow-no-auth", "--allowed-hosts", "mcp.example.test",
             "--allowed-origins", "https://app.example.test")  # fmt: skip
    for url in serve_llmproc(programs, transport, *extra):
        port = httpx2.URL(url).port
        async with httpx2.AsyncClient(timeout=10) as http:
            assert await probe(http, url, transport, {"host": "evil.example"}) == 421
            assert await probe(http, url, transport, {"origin": "http://evil.example"}) == 403
            for host in (f"mcp.example.test:{port}", f"localhost:{port}"):
                assert await probe(http, url, transport, {"host": host}) not in (403, 421), host
            origin = {"origin": "https://app.example.test"}
            assert await probe(http, url, transport, origin) not in (403, 421)
