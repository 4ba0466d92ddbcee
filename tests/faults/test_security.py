"""The HTTP front door on both transports: the bearer token, and Host/Origin checks against
DNS rebinding, hold for every kind of request, and a refusal never echoes the secret."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from http_servers import serve_llmproc

TOKEN = "tok-4f1d9c2b7e"
ACCEPT = {"accept": "application/json, text/event-stream"}


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    (tmp_path / "echo.toml").write_text('[model]\nname = "s"\nprovider = "scripted"\n')
    return tmp_path


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
