"""Tools: function tools, builtin tools and system calls, MCP servers, and the router."""
