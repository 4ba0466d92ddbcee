"""Command-line front ends: llmproc (run a program once), llmproc-demo (chat with programs in a
terminal) and llmproc-mcp (publish programs as MCP tools)."""

from __future__ import annotations

import argparse

from ..version import __version__


def add_version(parser: argparse.ArgumentParser) -> None:
    """`--version`, the same for every front end: what users paste into a bug report."""
    parser.add_argument("--version", action="version", version=f"{parser.prog} {__version__}")
