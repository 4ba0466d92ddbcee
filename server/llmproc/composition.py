"""How deeply llmproc-mcp servers are nested in each other: what the MCP client half (which
starts and calls servers) and the server half (which refuses requests nested too deep)
share, and nothing else.

A program may use an llmproc-mcp server as its tools, whose programs may use another...
Each stdio server started for a process is told the depth in its environment, each HTTP
request carries it in a header, so a program that calls the server running it fails fast.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

DEPTH_VARIABLE = "LLMPROC_MCP_DEPTH"
"""Set for every stdio server we start: how deeply llmproc-mcp servers are nested, to stop cycles."""
DEPTH_HEADER = "X-LLMProc-Depth"
"""The same count on every request to an HTTP server, which llmproc-mcp reads per request."""

request_depth: ContextVar[int | None] = ContextVar("llmproc_mcp_depth", default=None)
"""Set by llmproc-mcp while it serves a request that arrived with a depth (HTTP)."""


def composition_depth() -> int:
    """How many llmproc-mcp servers the current work is nested in (0 when a person started it)."""
    depth = request_depth.get()
    if depth is not None:
        return depth
    try:
        return max(0, int(os.environ.get(DEPTH_VARIABLE, "0")))
    except ValueError:
        return 0
