"""The README's examples run as written, and every example program loads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llmproc import LLMProgram

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_readme_has_python_examples():
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_python_example_runs_against_the_fake_provider(index, anthropic_env):
    env = dict(os.environ, ANTHROPIC_API_KEY=anthropic_env.api_key, ANTHROPIC_BASE_URL=anthropic_env.url)
    done = subprocess.run(
        [sys.executable, "-c", SNIPPETS[index]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"example {index} failed:\n{SNIPPETS[index]}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert anthropic_env.requests or "scripted" in SNIPPETS[index]


@pytest.mark.parametrize("block", re.findall(r"```json\n(.*?)```", README, flags=re.DOTALL))
def test_readme_json_blocks_are_valid(block):
    config = json.loads(block)
    for entry in config.get("servers", {}).values():  # VS Code's mcp.json requires the type
        assert entry["type"] == "stdio" and entry["command"] == "llmproc-mcp"


def test_readme_host_section_names_each_host():
    hosts = README.split("### In MCP hosts", 1)[1].split("\n## ", 1)[0]
    for host in ("Claude Desktop", "Claude Code", "VS Code"):
        assert f"**{host}**" in hosts
    assert '"type": "stdio"' in hosts


def test_readme_quick_start_has_exactly_two_commands():
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick_start, flags=re.DOTALL)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert commands == [
        venv + 'pip install -e . && llmproc programs/scripted.toml "Hello"',
        venv + 'pip install -e ".[test]" && pytest',
    ]


def test_ci_runs_the_readme_test_command():
    check = (ROOT / "scripts" / "check").read_text()
    assert "pytest" in check and "ruff check" in check
    assert "scripts/check" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("path", sorted((ROOT / "programs").rglob("*.toml")), ids=lambda p: p.name)
def test_example_program_loads(path):
    program = LLMProgram.from_toml(path)
    assert program.model_name


def test_scripted_example_runs_through_the_cli_with_no_api_key():
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.run", "programs/scripted.toml", "Hello"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Hello! I am a scripted model")
