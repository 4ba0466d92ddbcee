"""LLMProcess: a running program with conversation state.

One async code path: `arun` is the run; `run` returns its coroutine inside an event
loop and drives it to completion from synchronous code. A run is atomic: new messages
collect in a pending list and join the history only when the run completes, so an
error or a cancellation leaves the history exactly as it was.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from . import _sync
from .errors import ProcessError
from .events import EventCallback, TextDelta, ToolCallFinished, ToolCallStarted, TurnFinished, emit
from .kernel import Kernel, default_kernel
from .messages import Message, ToolCallBlock, ToolResultBlock
from .program import LLMProgram
from .providers import create_provider
from .providers.base import Provider, ProviderRequest
from .providers.pricing import cost_usd, price_from_config
from .result import RunResult, ToolCallRecord, Usage
from .tools.functions import FunctionToolset
from .tools.router import ToolRouter

log = logging.getLogger("llmproc")


class LLMProcess:
    """A process: a program plus its conversation, usage and cost."""

    def __init__(
        self,
        program: LLMProgram,
        *,
        kernel: Kernel | None = None,
        history: Sequence[Message] = (),
        parent: LLMProcess | None = None,
    ) -> None:
        self.program = program
        self.kernel = kernel or default_kernel
        self.id = self.kernel.new_process_id()
        self.parent_id = parent.id if parent else None
        self._history: list[Message] = list(history)
        self._provider: Provider | None = None
        self._callbacks: list[EventCallback] = []
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._closed = False
        self.usage = Usage()
        self.cost_usd: float | None = 0.0
        self._price = price_from_config(program.config.model.pricing)
        self.tools = ToolRouter(
            [FunctionToolset(program.function_tools)], timeout=program.config.model.tool_timeout
        )
        if program.config.tools.builtin:  # system calls and builtin tools land with the kernel work
            log.warning(
                "builtin tools are not available in this version, left out: %s",
                ", ".join(program.config.tools.builtin),
            )
        self.kernel.register(self)

    @classmethod
    def from_toml(cls, path: str | Path) -> LLMProcess:
        """Load a program file and start a process running it (the seed's API)."""
        return cls(LLMProgram.from_toml(path))

    # -- state ---------------------------------------------------------------------------------

    @property
    def messages(self) -> tuple[Message, ...]:
        """The conversation so far (immutable messages)."""
        return tuple(self._history)

    @property
    def display_name(self) -> str:
        return self.program.display_name

    def get_last_message(self) -> str:
        """Text of the latest assistant message, or '' before the first reply."""
        for message in reversed(self._history):
            if message.role == "assistant":
                return message.text
        return ""

    def reset_state(self) -> None:
        """Forget the conversation; usage and cost totals are kept."""
        self._history = []

    def fork(self) -> LLMProcess:
        """An independent copy sharing the (immutable) history; O(history) references only."""
        child = LLMProcess(self.program, kernel=self.kernel, history=self._history, parent=self)
        child._callbacks = list(self._callbacks)
        return child

    def add_callback(self, callback: EventCallback) -> None:
        """Receive the events of every run (text deltas, tool calls, finished turns)."""
        self._callbacks.append(callback)

    def remove_callback(self, callback: EventCallback) -> None:
        self._callbacks.remove(callback)

    # -- running -------------------------------------------------------------------------------

    def run(self, message: str, *, on_event: EventCallback | None = None) -> Any:
        """Run one user message: `await process.run(...)`, or call it directly from sync code.

        Returns a `RunResult` (a coroutine of one inside a running event loop).
        """
        coroutine = self.arun(message, on_event=on_event)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _sync.run(coroutine)
        return coroutine

    async def arun(self, message: str, *, on_event: EventCallback | None = None) -> RunResult:
        """Run one user message to the model's final answer."""
        if self._closed:
            raise ProcessError(f"process {self.id} is closed")
        if not isinstance(message, str):
            raise TypeError(f"run() takes the user message as a str, not {type(message).__name__}")
        callbacks = [*self._callbacks, on_event] if on_event else self._callbacks
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop) or self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            return await self._run(Message.user(message), callbacks)

    def _provider_instance(self) -> Provider:
        if self._provider is None:
            self._provider = create_provider(self.program, self.kernel)
        return self._provider

    async def _run(self, user_message: Message, callbacks: Sequence[EventCallback]) -> RunResult:
        """The loop. 1) ask the provider with history + pending; 2) keep its reply;
        3) without tool calls, stop; 4) run the calls concurrently and keep their results;
        5) repeat up to max_iterations; 6) commit pending to the history."""
        provider = self._provider_instance()
        pending = [user_message]
        usage, records = Usage(), []
        on_text = _text_forwarder(callbacks) if callbacks else None
        stop_reason, iteration = "end_turn", 0

        async def started(call: ToolCallBlock) -> None:
            await emit(callbacks, ToolCallStarted(call))

        async def finished(call: ToolCallBlock, result: ToolResultBlock, seconds: float) -> None:
            records.append(_record(call, result, seconds))
            await emit(callbacks, ToolCallFinished(call, result, seconds))

        for iteration in range(1, self.program.config.model.max_iterations + 1):
            request = ProviderRequest(
                self.program.system_prompt, self._history + pending, self.tools.specs, on_text
            )
            response = await provider.complete(request)
            self._account(response.usage)
            usage += response.usage
            pending.append(response.message)
            calls = response.message.tool_calls
            stop_reason = response.stop_reason
            if calls:
                results = await self.tools.run_all(calls, started, finished)
                pending.append(Message("user", tuple(results)))
            await emit(callbacks, TurnFinished(iteration, response.usage, stop_reason))
            if not calls:
                break
        else:
            stop_reason = "max_iterations"
        self._history.extend(pending)
        final = next((m for m in reversed(pending) if m.role == "assistant"), None)
        return RunResult(
            text=final.text if final else "",
            process_id=self.id,
            stop_reason=stop_reason,
            usage=usage,
            cost_usd=self._cost(usage),
            tool_calls=records,
            iterations=iteration,
        )

    def _cost(self, usage: Usage) -> float | None:
        model = self.program.config.model
        return cost_usd(model.provider, model.name, usage, self._price)

    def _account(self, usage: Usage) -> None:
        """Totals count every completed request, even in runs that later failed: those are billed too."""
        self.usage += usage
        cost = self._cost(usage)
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost

    # -- lifetime ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release the process's resources; further runs raise ProcessError."""
        self._closed = True

    async def __aenter__(self) -> LLMProcess:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"LLMProcess(id={self.id!r}, program={self.program.source!r}, messages={len(self._history)})"


def _text_forwarder(callbacks: Sequence[EventCallback]) -> Callable[[str], Awaitable[None]]:
    async def on_text(text: str) -> None:
        await emit(callbacks, TextDelta(text))

    return on_text


def _record(call: ToolCallBlock, result: ToolResultBlock, seconds: float) -> ToolCallRecord:
    text = result.text
    short = text if len(text) <= 2000 else text[:2000] + "…"
    return ToolCallRecord(call.id, call.name, call.arguments, short, result.is_error, round(seconds, 4))
