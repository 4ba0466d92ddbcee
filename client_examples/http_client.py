"""Talk to `llmproc-mcp` over Streamable HTTP. Start the server first:

    llmproc-mcp --programs programs --transport streamable-http --port 8000 [--auth-token TOKEN]
    python client_examples/http_client.py [URL]        # default http://127.0.0.1:8000/mcp

With a token, set LLMPROC_MCP_TOKEN for this script too. Over HTTP without a session (the
2026-07-28 protocol) each call without process_id starts a new process, so this client
passes the process_id back to continue its conversation.
"""

from __future__ import annotations

import asyncio
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str) -> None:
    token = os.environ.get("LLMPROC_MCP_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        print("protocol:", client.protocol_version)
        first = await client.call_tool("run_scripted", {"message": "Hello"})
        process_id = first.structured_content["process_id"]
        print("reply:", first.structured_content["text"])
        again = await client.call_tool("run_scripted", {"message": "More, please.", "process_id": process_id})
        print("reply:", again.structured_content["text"])
        listing = await client.call_tool("list_processes", {})
        print("programs:", ", ".join(listing.structured_content["programs"]))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/mcp"))
