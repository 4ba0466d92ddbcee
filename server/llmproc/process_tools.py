"""The tools a process's program asks for: built on first use, released with the process.

MCP servers start when a process first needs its tools, not when its program is loaded;
their connections are shared through the kernel and given back on close. Tool results over
the size limit become file descriptors (or are cut, without them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import McpServerError
from .kernel import Kernel
from .messages import TextBlock, ToolResultBlock
from .program import LLMProgram
from .run_state import RunningProcess
from .tools.base import Access
from .tools.calculator import calculator
from .tools.fd import FileDescriptors, fd_tools
from .tools.files import FileRoots, file_tools
from .tools.functions import FunctionToolset
from .tools.mcp import McpToolset
from .tools.router import ToolRouter
from .tools.syscalls import SYSCALLS, SyscallToolset

_FILE_TOOLS = {"read_file", "list_dir", "fd_to_file"}


class ProcessTools:
    def __init__(
        self, program: LLMProgram, kernel: Kernel, fds: FileDescriptors | None, max_access: Access
    ) -> None:
        self._program = program
        self._kernel = kernel
        self._fds = fds
        self._max_access = max_access
        config = program.config
        self.builtin: set[str] = set(config.tools.builtin)
        self._roots = (
            FileRoots([program.resolve(r) for r in config.tools.roots] or [Path.cwd()])
            if self.builtin & _FILE_TOOLS
            else None
        )
        self._router: ToolRouter | None = None
        self._mcp: list[McpToolset] | None = None

    async def router(self, process: RunningProcess) -> ToolRouter:
        """The tool router, built on first use: MCP servers start here, not at load time."""
        if self._router is not None:
            return self._router
        toolsets: list[Any] = [FunctionToolset(self._program.function_tools)]
        functions: list[Callable[..., Any]] = []
        if self._roots is not None:
            functions += file_tools(self._roots, self.builtin)
        if "calculator" in self.builtin:
            functions.append(calculator)
        if self._fds is not None:
            functions += fd_tools(self._fd_table, self._roots, self.builtin)
        if functions:
            toolsets.append(FunctionToolset(functions))
        if self.builtin & set(SYSCALLS):
            toolsets.append(SyscallToolset(process, self.builtin))
        toolsets += await self._mcp_toolsets()
        config = self._program.config
        self._router = ToolRouter(
            toolsets,
            timeout=config.model.tool_timeout,
            aliases=config.tools.aliases,
            max_access=self._max_access,
        )
        return self._router

    def _fd_table(self) -> FileDescriptors:
        assert self._fds is not None
        return self._fds

    async def _mcp_toolsets(self) -> list[McpToolset]:
        program = self._program
        if not program.mcp_servers:
            return []
        if self._mcp is None:
            self._mcp = [
                McpToolset(
                    self._kernel.mcp.acquire(spec), program.mcp_tools[name], program.config.model.tool_timeout
                )
                for name, spec in program.mcp_servers.items()
            ]
        outcomes = await asyncio.gather(*(t.load() for t in self._mcp), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for failure in failures:
            if not isinstance(failure, McpServerError):
                raise failure
        if failures:
            raise McpServerError("\n".join(str(f) for f in failures))
        return self._mcp

    async def release(self) -> None:
        """Give back this process's share of its MCP servers."""
        toolsets, self._mcp = self._mcp or [], None
        for toolset in toolsets:
            await self._kernel.mcp.release(toolset.connection)

    def page_long_result(self, result: ToolResultBlock) -> ToolResultBlock:
        """A tool result over the size limit becomes a file descriptor, or is cut without them."""
        config = self._program.config
        if self._fds is None or result.is_error or result.name == "read_fd":
            return _cut_long_result(result, config.limits.max_tool_result_chars)
        limit = config.file_descriptor.max_direct_output_chars
        replacement = self._fds.page_if_long(result.text, source=f"The result of {result.name}", limit=limit)
        if replacement is None:
            return result
        images = tuple(b for b in result.content if not isinstance(b, TextBlock))
        return ToolResultBlock(result.tool_call_id, (TextBlock(replacement), *images), False, result.name)


def _cut_long_result(result: ToolResultBlock, limit: int) -> ToolResultBlock:
    """Keep a tool result's text within `limit` characters, saying what was left out."""
    text = result.text
    if len(text) <= limit:
        return result
    note = (
        f"\n[result cut: {len(text):,} characters, the first {limit:,} shown; "
        "[file_descriptor] enabled would page through all of it]"
    )
    images = tuple(b for b in result.content if not isinstance(b, TextBlock))
    cut = TextBlock(text[:limit] + note)
    return ToolResultBlock(result.tool_call_id, (cut, *images), result.is_error, result.name)
