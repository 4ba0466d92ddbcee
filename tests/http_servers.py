"""Start an HTTP MCP server as a subprocess on a free loopback port, for the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

TOOLBOX = Path(__file__).resolve().parent / "mcp_servers" / "toolbox.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(command: list[str], port: int, transport: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `command` (which listens on `port`) until the generator is closed; yields its MCP URL."""
    for url, _ in serve_process(command, port, transport, env):
        yield url


def serve_process(
    command: list[str], port: int, transport: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`serve`, also yielding the server's process (to kill it in crash tests)."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None:
                    output = server.stderr.read().decode() if server.stderr else ""
                    raise RuntimeError(f"{command} exited: {output}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}" + ("/mcp" if transport == "streamable-http" else "/sse"), server
    finally:
        if server.poll() is None:
            server.terminate()
        server.communicate(timeout=10)  # reaps it and closes its pipe


def serve_toolbox(transport: str) -> Iterator[str]:
    port = free_port()
    yield from serve([sys.executable, str(TOOLBOX), transport, str(port)], port, transport)


def serve_llmproc(
    programs: Path, transport: str, *extra: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--transport", transport]
    yield from serve([*command, "--port", str(port), *extra], port, transport, env)
