"""The MCP server front end: publishes a directory of programs as MCP tools.

catalog.py finds and names the programs, handles.py keeps the processes that callers
talk to, app.py is the thin MCP layer over both; `llmproc-mcp` (cli/mcp.py) runs it.
"""
