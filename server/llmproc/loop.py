"""The run loop: model turns, one after another, until a turn's next step is Stop.

A turn asks the provider, keeps its reply and runs the tool calls the reply holds. What a
turn leads to is decided in one place, `next_step`: Continue, or Stop with the reason the
run reports. Everything else that happens around a turn (the cost budget, fd-reference
capture, goto) is a `TurnHook` the process passes in, so features are added beside the
loop, never into it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from .events import (
    EventCallback,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    emit,
    wants_text,
)
from .messages import Message, ToolCallBlock, ToolResultBlock
from .providers.base import Provider, ProviderRequest, ProviderResponse
from .result import ToolCallRecord, Usage
from .run_state import RunState
from .tools.router import ToolRouter


@dataclass(frozen=True, slots=True)
class Continue:
    """Ask the model again: it called tools, and their results are in."""


@dataclass(frozen=True, slots=True)
class Stop:
    """The run is over; `reason` is its stop_reason."""

    reason: str


Step = Continue | Stop


class TurnHook:
    """Something that happens around every turn; each method does nothing unless overridden."""

    def before_turn(self, run: RunState, iteration: int) -> Stop | None:
        """Stop the run before the model is asked again, or let it go on (None)."""
        return None

    def after_reply(self, run: RunState, reply: Message) -> None:
        """See the model's reply once it is kept."""

    def after_tools(self, run: RunState) -> None:
        """Change the run once the turn's tool results are kept."""


@dataclass(frozen=True, slots=True)
class Turns:
    """What a run's turns are made of."""

    provider: Provider
    tools: ToolRouter
    system_prompt: str
    max_iterations: int
    hooks: Sequence[TurnHook]
    account: Callable[[Usage], None]
    """Charges each reply's usage to the process (a billed request counts even if the run fails)."""
    page_result: Callable[[ToolResultBlock], ToolResultBlock]


@dataclass(slots=True)
class Outcome:
    """How the turns went: why they stopped, how many there were, what they used and called."""

    stop_reason: str
    iterations: int
    usage: Usage
    tool_calls: list[ToolCallRecord] = field(default_factory=list)


def next_step(response: ProviderResponse, iteration: int, max_iterations: int) -> Step:
    """The one place a run's course is decided once the turn is done."""
    if not response.message.tool_calls:
        return Stop(response.stop_reason)
    if iteration >= max_iterations:
        return Stop("max_iterations")
    return Continue()


async def run_turns(turns: Turns, run: RunState, callbacks: Sequence[EventCallback]) -> Outcome:
    """Run turns until one stops. Each turn:
    1. the hooks may stop the run before the model is asked (the cost budget);
    2. the provider is asked with the history plus what this run added;
    3. its reply is kept and shown to the hooks (fd-reference capture);
    4. the reply's tool calls run concurrently; their results are kept in call order;
    5. the hooks may change the run (goto);
    6. `next_step` decides: Stop(the provider's reason), Stop("max_iterations"), or Continue.
    """
    outcome = Outcome("end_turn", 0, Usage())
    on_text = _text_forwarder(callbacks) if wants_text(callbacks) else None  # else no stream
    step: Step = Continue()
    while isinstance(step, Continue):
        outcome.iterations += 1
        stopped = next((s for h in turns.hooks if (s := h.before_turn(run, outcome.iterations))), None)
        if stopped is not None:
            step = stopped
            break
        request = ProviderRequest(turns.system_prompt, run.messages, turns.tools.specs, on_text)
        response = await turns.provider.complete(request)
        turns.account(response.usage)
        outcome.usage += response.usage
        run.pending.append(response.message)
        for hook in turns.hooks:
            hook.after_reply(run, response.message)
        if response.message.tool_calls:
            await _run_calls(turns, run, response.message.tool_calls, outcome.tool_calls, callbacks)
            for hook in turns.hooks:
                hook.after_tools(run)
        await emit(callbacks, TurnFinished(outcome.iterations, response.usage, response.stop_reason))
        step = next_step(response, outcome.iterations, turns.max_iterations)
    outcome.stop_reason = step.reason
    return outcome


async def _run_calls(
    turns: Turns,
    run: RunState,
    calls: Sequence[ToolCallBlock],
    records: list[ToolCallRecord],
    callbacks: Sequence[EventCallback],
) -> None:
    """Run one reply's tool calls concurrently and keep their results as the next user message."""
    first_record = len(records)

    async def started(call: ToolCallBlock) -> None:
        await emit(callbacks, ToolCallStarted(call))

    async def finished(call: ToolCallBlock, result: ToolResultBlock, seconds: float) -> None:
        records.append(_record(call, result, seconds))
        await emit(callbacks, ToolCallFinished(call, result, seconds))

    run.children_this_turn = 0
    results = await turns.tools.run_all(calls, started, finished, run, turns.page_result)
    order = {call.id: index for index, call in enumerate(calls)}  # records in call order
    records[first_record:] = sorted(records[first_record:], key=lambda r: order.get(r.id, 0))
    run.pending.append(Message("user", tuple(results)))


def _text_forwarder(callbacks: Sequence[EventCallback]) -> Callable[[str], Awaitable[None]]:
    async def on_text(text: str) -> None:
        await emit(callbacks, TextDelta(text))

    return on_text


def _record(call: ToolCallBlock, result: ToolResultBlock, seconds: float) -> ToolCallRecord:
    text = result.text
    short = text if len(text) <= 2000 else text[:2000] + "…"
    return ToolCallRecord(call.id, call.name, call.arguments, short, result.is_error, round(seconds, 4))
