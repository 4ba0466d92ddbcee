"""Routes tool calls to the toolset that owns each name and runs one turn's calls concurrently.

Every failure a tool can have (unknown name, bad arguments, exception, timeout) becomes
an error result for the model; only cancellation propagates, so a cancelled run
cancels its tool calls too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from ..messages import ToolCallBlock, ToolResultBlock
from .base import ToolOutcome, Toolset, ToolSpec

OnFinished = Callable[[ToolCallBlock, ToolResultBlock, float], Awaitable[None]]
OnStarted = Callable[[ToolCallBlock], Awaitable[None]]


class ToolRouter:
    def __init__(self, toolsets: Sequence[Toolset], *, timeout: float) -> None:
        self.timeout = timeout
        self._owner: dict[str, Toolset] = {}
        self._specs: list[ToolSpec] = []
        for toolset in toolsets:
            for spec in toolset.specs():
                if spec.name in self._owner:
                    raise ValueError(f"two tools are named '{spec.name}'; rename one")
                self._owner[spec.name] = toolset
                self._specs.append(spec)

    @property
    def specs(self) -> list[ToolSpec]:
        return self._specs

    async def call(self, call: ToolCallBlock) -> ToolOutcome:
        toolset = self._owner.get(call.name)
        if toolset is None:
            known = ", ".join(self._owner) or "none"
            return ToolOutcome.text(f"unknown tool '{call.name}'; available tools: {known}", is_error=True)
        with anyio.move_on_after(self.timeout):
            try:
                return await toolset.call(call.name, call.arguments)
            except Exception as err:  # a toolset bug must not end the run
                return ToolOutcome.text(
                    f"tool '{call.name}' failed: {type(err).__name__}: {err}", is_error=True
                )
        return ToolOutcome.text(f"tool '{call.name}' timed out after {self.timeout:g}s", is_error=True)

    async def run_all(
        self, calls: Sequence[ToolCallBlock], on_started: OnStarted, on_finished: OnFinished
    ) -> list[ToolResultBlock]:
        """Run `calls` concurrently; results come back in the order of the calls."""
        results: list[Any] = [None] * len(calls)

        async def run_one(index: int, call: ToolCallBlock) -> None:
            await on_started(call)
            started = time.perf_counter()
            outcome = await self.call(call)
            result = ToolResultBlock(call.id, outcome.content, outcome.is_error, call.name)
            results[index] = result
            await on_finished(call, result, time.perf_counter() - started)

        if len(calls) == 1:
            await run_one(0, calls[0])
        else:
            async with anyio.create_task_group() as group:
                for index, call in enumerate(calls):
                    group.start_soon(run_one, index, call)
        return results
