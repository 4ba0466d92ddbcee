"""Routes tool calls to the toolset that owns each name and runs one turn's calls concurrently.

Every failure a tool can have (unknown name, bad arguments, exception, timeout, an
access level above the process's limit) becomes an error result for the model; only
cancellation propagates, so a cancelled run cancels its tool calls too.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio

from ..errors import ProcessError
from ..messages import ToolCallBlock, ToolResultBlock
from ..run_state import RunState
from .base import Access, CallContext, ToolOutcome, Toolset, ToolSpec, allows, current_call

OnFinished = Callable[[ToolCallBlock, ToolResultBlock, float], Awaitable[None]]
OnStarted = Callable[[ToolCallBlock], Awaitable[None]]


class ToolRouter:
    def __init__(
        self,
        toolsets: Sequence[Toolset],
        *,
        timeout: float,
        aliases: Mapping[str, str] | None = None,
        max_access: Access = "admin",
    ) -> None:
        self.timeout = timeout
        self._owner: dict[str, tuple[Toolset, ToolSpec]] = {}
        self._withheld: dict[str, ToolSpec] = {}
        renamed = {real: alias for alias, real in (aliases or {}).items()}
        for toolset in toolsets:
            for spec in toolset.specs():
                exposed = (
                    dataclasses.replace(spec, name=renamed.pop(spec.name)) if spec.name in renamed else spec
                )
                if exposed.name in self._owner or exposed.name in self._withheld:
                    raise ProcessError(
                        f"two tools are named '{exposed.name}'; rename one ([tools] aliases or an MCP alias)"
                    )
                if allows(max_access, spec.access):
                    self._owner[exposed.name] = (toolset, spec)
                else:
                    self._withheld[exposed.name] = spec
        if renamed:
            raise ProcessError(
                f"[tools] aliases name tools this program does not have: {', '.join(sorted(renamed))}"
            )
        self.max_access = max_access
        self._specs = [
            dataclasses.replace(spec, name=name) if spec.name != name else spec
            for name, (_, spec) in self._owner.items()
        ]

    @property
    def specs(self) -> list[ToolSpec]:
        return self._specs

    async def call(self, call: ToolCallBlock) -> ToolOutcome:
        owner = self._owner.get(call.name)
        if owner is None:
            withheld = self._withheld.get(call.name)
            if withheld is not None:
                return ToolOutcome.text(
                    f"tool '{call.name}' needs {withheld.access} access; this process is limited to "
                    f"{self.max_access}",
                    is_error=True,
                )
            known = ", ".join(self._owner) or "none"
            return ToolOutcome.text(f"unknown tool '{call.name}'; available tools: {known}", is_error=True)
        toolset, spec = owner
        timeout = spec.timeout or self.timeout
        with anyio.move_on_after(timeout):
            try:
                return await toolset.call(spec.name, call.arguments)
            except Exception as err:  # a toolset bug must not end the run
                return ToolOutcome.text(
                    f"tool '{call.name}' failed: {type(err).__name__}: {err}", is_error=True
                )
        return ToolOutcome.text(f"tool '{call.name}' timed out after {timeout:g}s", is_error=True)

    async def run_all(
        self,
        calls: Sequence[ToolCallBlock],
        on_started: OnStarted,
        on_finished: OnFinished,
        run: RunState | None = None,
        shape: Callable[[ToolResultBlock], ToolResultBlock] | None = None,
    ) -> list[ToolResultBlock]:
        """Run `calls` concurrently; results come back in the order of the calls.

        `shape` turns each result into what the model will see (for example a file
        descriptor in place of a long text) before `on_finished` reports it.
        """
        results: list[Any] = [None] * len(calls)

        async def run_one(index: int, call: ToolCallBlock) -> None:
            await on_started(call)
            started = time.perf_counter()
            token = current_call.set(CallContext(call, run) if run is not None else None)
            try:
                outcome = await self.call(call)
            finally:
                current_call.reset(token)
            result = ToolResultBlock(call.id, outcome.content, outcome.is_error, call.name)
            if shape is not None:
                result = shape(result)
            results[index] = result
            await on_finished(call, result, time.perf_counter() - started)

        if len(calls) == 1:
            await run_one(0, calls[0])
        else:
            async with anyio.create_task_group() as group:
                for index, call in enumerate(calls):
                    group.start_soon(run_one, index, call)
        return results
