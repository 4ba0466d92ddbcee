"""Talk to `llmproc-mcp` over stdio, as Claude Desktop does: list the tools, run a program twice
(the second call continues the conversation), then continue it again by process_id.

    python client_examples/stdio_client.py [PROGRAMS_DIR]

The default directory is this repository's programs/; `run_scripted` needs no API key.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


async def main(programs: Path) -> None:
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "llmproc.cli.mcp", "--programs", str(programs)]
    )
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        print("tools:", ", ".join(t.name for t in tools))

        first = await client.call_tool("run_scripted", {"message": "Hello"})
        print("reply:", first.structured_content["text"])
        process_id = first.structured_content["process_id"]

        second = await client.call_tool("run_scripted", {"message": "And then?"})
        print("reply:", second.structured_content["text"])

        third = await client.call_tool("run_scripted", {"message": "Go on.", "process_id": process_id})
        print("reply:", third.structured_content["text"])
        print("process:", process_id, "cost:", third.structured_content["cost_usd"])


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else PROGRAMS))
