"""Shared fixtures: a network guard, the fake provider server, program files."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_provider import FakeProviderServer

_real_connect = socket.socket.connect

_HOME = tempfile.mkdtemp(prefix="llmproc-test-home-")
os.environ["HOME"] = _HOME  # stdio clients pass HOME on (the SDK passes little else): never the real one
os.environ["XDG_STATE_HOME"] = os.path.join(_HOME, ".local", "state")
"""llmproc-mcp keeps its state under the user's state directory by default: never the real one,
and (below) a fresh one per test, so no test sees another's conversations."""


@pytest.fixture(autouse=True)
def _own_state_directory(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """HOME too: clients (the SDKs', the Inspector) pass HOME on to the servers they start."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.delenv("LLMPROC_STATE", raising=False)


def _loopback_only(self: socket.socket, address: object) -> object:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        try:
            allowed = ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = host == "localhost"
        if not allowed:
            raise ConnectionRefusedError(f"tests may not reach the network (tried {host})")
    return _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection outside 127.0.0.0/8 fails: tests never call real providers."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


PROVIDER_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
)


@pytest.fixture(autouse=True)
def _clean_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def anthropic_env(fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> FakeProviderServer:
    """The Anthropic SDK's standard variables point at the fake server."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", fake.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    return fake


@pytest.fixture
def openai_env(fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> FakeProviderServer:
    """The OpenAI SDK's standard variables point at the fake server."""
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
    return fake


@pytest.fixture
def write_program(tmp_path: Path) -> Callable[..., Path]:
    """Write a program file (dedented) and return its path."""

    def write(text: str, name: str = "program.toml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One private PostgreSQL cluster for the session (started on first use); each test that asks
    for `postgres_url` gets a database of its own on it."""
    from postgres import cluster

    with cluster() as running:
        yield running.url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    from postgres import new_database

    return new_database(postgres_server)
