"""A small MCP server for the tests: arithmetic, images, resources, and ways to fail.

python toolbox.py                       # stdio
python toolbox.py streamable-http PORT  # or: sse PORT
python toolbox.py --exit-at-start       # prints to stderr and exits 3 (a server that fails to start)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys

import mcp_types as types
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Image

# A 1x1 transparent PNG.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

app = MCPServer("toolbox", version="1.0")
WIRE = os.dup(1)
"""The stdio wire, kept before the SDK diverts sys.stdout: tools that break the protocol write here."""


@app.tool(annotations=types.ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool(annotations=types.ToolAnnotations(read_only_hint=True))
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@app.tool(annotations=types.ToolAnnotations(read_only_hint=True))
def server_pid() -> int:
    """The server's process id (tests use it to see sharing and restarts)."""
    return os.getpid()


@app.tool()
def pixel() -> Image:
    """A one-pixel PNG image."""
    return Image(data=PIXEL, format="png")


@app.tool()
def note_resource() -> types.EmbeddedResource:
    """An embedded text resource."""
    return types.EmbeddedResource(
        type="resource",
        resource=types.TextResourceContents(uri="note://1", mime_type="text/plain", text="remember the milk"),
    )


@app.tool(annotations=types.ToolAnnotations(destructive_hint=True))
def delete_everything() -> str:
    """A destructive tool (access level admin)."""
    return "deleted"


@app.tool()
def write_note(text: str) -> str:
    """A tool that writes (no annotations: access level write)."""
    return f"wrote {len(text)} characters"


@app.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@app.tool()
def crash() -> str:
    """Kill the server process in the middle of the call."""
    os._exit(1)


@app.tool()
def fail(message: str) -> str:
    """Raise an error (a tool failure the model should see)."""
    from mcp.server.mcpserver.exceptions import ToolError

    raise ToolError(message)


@app.tool()
def big(size: int) -> str:
    """A long text of numbered lines, about `size` characters."""
    lines, total, n = [], 0, 0
    while total < size:
        n += 1
        line = f"line {n}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


@app.tool()
async def noise(ctx: Context) -> str:
    """Write lines that are not JSON-RPC to stdout, then answer normally."""
    os.write(WIRE, b'this is not JSON\n{"jsonrpc": "2.0", "what": 1}\n[1, 2\n')
    return "answered after the noise"


@app.tool()
async def bad_reply(ctx: Context) -> str:
    """Answer this call with a JSON-RPC response whose result is not a tool result, then go quiet."""
    request_id = (
        int(ctx.request_id) if str(ctx.request_id).isdigit() else ctx.request_id
    )  # as the client sent it
    reply = {"jsonrpc": "2.0", "id": request_id, "result": {"content": "not a list", "isError": "no"}}
    os.write(WIRE, json.dumps(reply).encode() + b"\n")
    await asyncio.sleep(3600)
    return "never"


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "--exit-at-start":
        print("toolbox: configuration missing, giving up", file=sys.stderr)
        sys.exit(3)
    transport = args[0] if args else "stdio"
    if transport == "stdio":
        app.run("stdio")
    else:
        app.run(transport, host="127.0.0.1", port=int(args[1]))  # type: ignore[call-overload]


if __name__ == "__main__":
    main()
