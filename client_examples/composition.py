"""Two llmproc-mcp servers composed: this client talks to an outer server whose program is itself
an MCP client of an inner llmproc-mcp server, over one protocol.

    python client_examples/composition.py

client -> llmproc-mcp (composition/) -> run_front -> llmproc-mcp (composition/experts/)
       -> run_shouter. Both programs are scripted: no API key needed. `llmproc-mcp` must be on
PATH (pip install -e . puts it there).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

HERE = Path(__file__).resolve().parent / "composition"


async def main() -> None:
    outer = StdioServerParameters(
        command=sys.executable, args=["-m", "llmproc.cli.mcp", "--programs", str(HERE)]
    )
    async with Client(outer) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        print("outer server tools:", ", ".join(tools))
        result = await client.call_tool("run_front", {"message": "Ask the expert."})
        (call,) = result.structured_content["tool_calls"]
        print("the front program called:", call["name"])
        answer, _, rest = call["result"].partition("\n\n")  # the reply, its process_id, a link
        print("the inner server answered:", answer, rest.splitlines()[0])
        print("reply:", result.structured_content["text"])


if __name__ == "__main__":
    asyncio.run(main())
