"""Third-party MCP servers: `mcp-server-time` from PyPI (a test extra) and the reference
`@modelcontextprotocol/server-everything` from npm, installed here on first use."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"


def node_package_bin(package: str, script: str) -> Path:
    """The installed script of an npm package, running `npm ci` first if it is missing."""
    target = NODE_DIR / "node_modules" / package / script
    if not target.exists() or not _installed_as_locked():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("the integration tests need Node.js and npm (https://nodejs.org)")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {NODE_DIR} failed:\n{done.stderr[-2000:]}")
    return target


def _installed_as_locked() -> bool:
    """Every package of package.json is in node_modules (npm ci has run since it changed)."""
    import json

    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    return all((NODE_DIR / "node_modules" / name / "package.json").exists() for name in wanted)


@pytest.fixture(scope="session")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("the integration tests need Node.js (https://nodejs.org)")
    return found


@pytest.fixture(scope="session")
def inspector_cli(node: str) -> list[str]:
    """The MCP Inspector's command-line mode."""
    node_package_bin("@modelcontextprotocol/inspector", "package.json")
    return [str(NODE_DIR / "node_modules" / ".bin" / "mcp-inspector"), "--cli"]


@pytest.fixture(scope="session")
def ts_client(node: str) -> list[str]:
    """tests/integration/node/ts_client.mjs, a client on the official TypeScript SDK."""
    node_package_bin("@modelcontextprotocol/sdk", "package.json")
    return [node, str(NODE_DIR / "ts_client.mjs")]


@pytest.fixture(scope="session")
def everything_server() -> list[str]:
    """Command line of the MCP reference server 'everything' over stdio."""
    script = node_package_bin("@modelcontextprotocol/server-everything", "dist/index.js")
    node = shutil.which("node")
    assert node, "node is not on PATH"
    return [node, str(script), "stdio"]


@pytest.fixture(scope="session")
def time_server() -> list[str]:
    """Command line of mcp-server-time, installed with the test extras."""
    script = Path(sys.executable).parent / "mcp-server-time"
    found = str(script) if script.exists() else shutil.which("mcp-server-time")
    assert found, "mcp-server-time is missing: pip install -e '.[test]'"
    return [found]


@pytest.fixture(scope="session")
def claude_code(node: str) -> str:
    """Claude Code's command line (`claude`), pinned in node/package.json."""
    node_package_bin("@anthropic-ai/claude-code", "package.json")
    return str(NODE_DIR / "node_modules" / ".bin" / "claude")


@pytest.fixture(scope="session")
def gemini_cli(node: str) -> str:
    """Gemini CLI's command line (`gemini`), pinned in node/package.json."""
    node_package_bin("@google/gemini-cli", "package.json")
    return str(NODE_DIR / "node_modules" / ".bin" / "gemini")
