"""Events a run emits while it works, for CLIs, progress reports and logs.

Callbacks receive each event as it happens; they may be plain functions or coroutines.
A callback that raises is logged and ignored: watching a run must never break it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .messages import ToolCallBlock, ToolResultBlock
from .result import Usage

log = logging.getLogger("llmproc")


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    call: ToolCallBlock


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    call: ToolCallBlock
    result: ToolResultBlock
    duration_s: float


@dataclass(frozen=True, slots=True)
class TurnFinished:
    """One model turn (request and its tool calls) is complete."""

    iteration: int
    usage: Usage
    stop_reason: str


RunEvent = TextDelta | ToolCallStarted | ToolCallFinished | TurnFinished
EventCallback = Callable[[RunEvent], Any | Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Watch:
    """A callback for some kinds of event only. A run streams the model's reply only when a
    callback may want its `TextDelta`s, and a plain request costs the provider's SDK far less
    CPU than a stream: watchers of turns and tool calls alone should say so."""

    callback: EventCallback
    kinds: tuple[type, ...]

    def __call__(self, event: RunEvent) -> Any:
        return self.callback(event) if isinstance(event, self.kinds) else None


def wants_text(callbacks: Sequence[EventCallback]) -> bool:
    """Does any callback take text deltas (a plain callback takes every event)?"""
    return any(not isinstance(c, Watch) or TextDelta in c.kinds for c in callbacks)


async def emit(callbacks: Sequence[EventCallback], event: RunEvent) -> None:
    """Deliver `event` to every callback; failures are logged, never raised."""
    for callback in callbacks:
        try:
            outcome = callback(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("event callback %r failed on %s", callback, type(event).__name__)
