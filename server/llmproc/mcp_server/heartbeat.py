"""Progress while a run is in flight, so hosts that time calls out keep waiting.

Most hosts give up on a tool call after a minute or so unless progress arrives; some reset
that timer on each progress message. A run reports each model turn and each tool call it
starts, and, between them (a slow model, a long tool), a heartbeat at least every
`interval` seconds that says what it is waiting for and how far it has come.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

from ..events import RunEvent, ToolCallFinished, ToolCallStarted, TurnFinished

EVENTS = (ToolCallStarted, ToolCallFinished, TurnFinished)
"""What progress is made of: not text deltas, so runs make plain provider requests."""

Report = Callable[[float, str], Awaitable[None]]
"""Sends one progress message: a count that only grows, and what is happening."""


class Heartbeat:
    """Reports a run's events, and what it is waiting on whenever `interval` passes quietly."""

    def __init__(self, report: Report, interval: float) -> None:
        self._report = report
        self._interval = interval
        self._step = 0
        self._turn = 1
        self._tokens_in = 0
        self._tokens_out = 0
        self._tool: tuple[str, float] | None = None
        self._started = time.monotonic()
        self._spoke = asyncio.Event()
        self._beating: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeat:
        if self._interval > 0:
            self._beating = asyncio.create_task(self._beat())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating

    async def on_event(self, event: RunEvent) -> None:
        if isinstance(event, ToolCallStarted):
            self._tool = (event.call.name, time.monotonic())
            await self._say(f"calling tool {event.call.name}")
        elif isinstance(event, ToolCallFinished):
            self._tool = None
            await self._say(f"tool {event.call.name} done in {event.duration_s:.1f} s")
        elif isinstance(event, TurnFinished):
            self._tokens_in += event.usage.input_tokens
            self._tokens_out += event.usage.output_tokens
            self._turn = event.iteration + 1
            await self._say(f"model turn {event.iteration} done ({event.usage.output_tokens} tokens out)")

    def waiting_on(self) -> str:
        """What the run is doing now, for a heartbeat."""
        now = time.monotonic()
        if self._tool is not None:
            name, since = self._tool
            doing = f"running tool {name} ({now - since:.0f} s)"
        else:
            doing = f"waiting for the model (turn {self._turn})"
        tokens = f"{self._tokens_in:,} tokens in and {self._tokens_out:,} out so far"
        return f"{doing}; {now - self._started:.0f} s into the run, {tokens}"

    async def _say(self, text: str) -> None:
        self._step += 1
        self._spoke.set()
        await self._report(self._step, text)

    async def _beat(self) -> None:
        while True:
            self._spoke.clear()
            spoken = asyncio.ensure_future(self._spoke.wait())
            # A timer by design: quiet for `interval`, speak up. asyncio.wait, not wait_for: on
            # Python 3.11 wait_for swallows the cancel that ends the run if an event lands then.
            try:
                done, _ = await asyncio.wait({spoken}, timeout=self._interval)
            finally:
                spoken.cancel()
            if not done:
                with contextlib.suppress(Exception):  # the client has gone: the run goes on
                    await self._say(self.waiting_on())
