"""Runs that ask the client between tool-call rounds, for clients without a back channel.

A program whose model is the client's own (mcp_sampling) sends each model turn to the
client. A 2026-07-28 client has no channel for server-to-client requests, so the run is
parked: each turn goes back as an input_required round, and the retried call (carrying the
client's answer and our request_state) resumes it. Waiting runs hold live processes, so they
are bounded in all and per caller.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from mcp_types import CallToolResult, CreateMessageRequest, InputRequiredResult

from ..client_channel import ClientChannel, current_client
from ..composition import request_depth
from ..errors import LLMProcError, RequestError
from ..result import RunResult
from .handles import Handle, Owner
from .tool_server import ToolCall

ROUND_TIMEOUT = 600.0
"""Seconds a run waits for a client to answer one round before it fails."""

MAX_WAITING_RUNS = 100
"""Runs waiting for answers, in all: each holds a live process until answered or timed out,
so they never take more than half of --max-live-processes either."""

Finish = Callable[[Handle, RunResult, int], Awaitable[CallToolResult]]
"""Stores a finished run and makes its answer (the server's, as for any run)."""

Hold = Callable[[Handle], AbstractAsyncContextManager[Handle]]
"""Holds the process for the whole run, all its rounds and the commit (its lease, with --state)."""


@dataclass(eq=False)
class _ParkedRun:
    """A run between input_required rounds: questions go out, answers come in."""

    handle: Handle
    length_before: int
    outbox: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    waiting: asyncio.Future[Any] | None = None  # the answer the last round asked for
    task: asyncio.Task[None] | None = None


class InputRounds:
    def __init__(self, max_live: int, finish: Finish) -> None:
        self._room = max(1, min(MAX_WAITING_RUNS, max_live // 2))
        self._finish = finish
        self._parked: dict[str, _ParkedRun] = {}  # request_state -> a run waiting for an answer
        self.prefix = ""
        """Put before each request_state: under --workers it names the worker holding the run."""

    async def start(self, handle: Handle, message: str, call: ToolCall, depth: int, *, hold: Hold) -> Any:
        """Start the run in the background; answer with its first round (or its result)."""
        self._check_room(handle.owner)
        parked = _ParkedRun(handle, 0)
        token = self.prefix + secrets.token_urlsafe(16)
        self._parked[token] = parked
        session = call.session

        async def ask(params: Any) -> Any:
            answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            await parked.outbox.put(("sample", (params, answer)))  # children may ask at once:
            return await asyncio.wait_for(answer, ROUND_TIMEOUT)  # each waits for its own answer

        async def body() -> None:
            request_depth.set(depth)
            current_client.set(ClientChannel(session, None, ask))
            try:
                async with hold(handle):
                    parked.length_before = len(handle.process.history_view())
                    result = await handle.process.run(message)
                    answer = await self._finish(handle, result, parked.length_before)
            except BaseException as err:
                if isinstance(err, asyncio.TimeoutError):  # the client went away between rounds
                    self._parked.pop(token, None)
                await parked.outbox.put(("error", err))
                if not isinstance(err, Exception):
                    raise
                return
            await parked.outbox.put(("done", answer))

        parked.task = asyncio.create_task(body())
        return await self._next_round(token, parked)

    async def resume(self, call: ToolCall) -> Any:
        """A retried call answering a round: hand the answer to the waiting run."""
        token = call.request_state or ""
        parked = self._parked.get(token)
        if parked is None:
            raise RequestError("unknown or expired request_state; call the tool again without it")
        answer = (call.input_responses or {}).get("sample")
        if answer is None:
            raise RequestError("the retried call carries no answer to the sampling request 'sample'")
        waiting, parked.waiting = parked.waiting, None
        if waiting is None or waiting.done():
            raise RequestError(
                "no sampling request is waiting for this request_state; it was answered already"
            )
        waiting.set_result(answer)
        return await self._next_round(token, parked)

    def _check_room(self, owner: Owner) -> None:
        """Unanswered rounds must not lock the server: bounded in all, and per identified caller
        to a quarter of that (callers without a session share the whole)."""
        if len(self._parked) >= self._room:
            raise RequestError(
                f"{len(self._parked)} runs are waiting for sampling answers, the most this server "
                "keeps; answer or cancel one, or try again later"
            )
        if owner is not None:
            mine = sum(1 for parked in self._parked.values() if parked.handle.owner == owner)
            if mine >= max(1, self._room // 4):
                raise RequestError(
                    f"you have {mine} runs waiting for sampling answers, the most one client may "
                    "keep; answer or cancel one first"
                )

    async def _next_round(self, token: str, parked: _ParkedRun) -> Any:
        kind, value = await parked.outbox.get()
        if kind == "sample":
            params, parked.waiting = value
            return InputRequiredResult(
                input_requests={"sample": CreateMessageRequest(params=params)}, request_state=token
            )
        self._parked.pop(token, None)
        handle = parked.handle
        handle.last_used = time.time()
        if kind == "error":
            if isinstance(value, LLMProcError):
                raise RequestError(str(value))
            if isinstance(value, asyncio.TimeoutError):
                raise RequestError(f"the client did not answer a sampling round within {ROUND_TIMEOUT:g}s")
            raise RequestError(f"the run failed: {type(value).__name__}: {value}")
        return value
