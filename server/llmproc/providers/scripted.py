"""The `scripted` provider: offline, deterministic model turns for tests and demos.

Replies come from `[scripted] replies` (one per model turn, counted from the number of
assistant turns in the conversation, so reset and fork behave as with a real model),
from a Python function of the conversation, or, with neither, the model echoes the
last user message. Replies can call tools.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ..config import ScriptedReply, ScriptedToolCall
from ..errors import ProviderError
from ..messages import Message, TextBlock, ThinkingBlock, ToolCallBlock
from ..result import Usage
from .base import (
    ClientPool,
    ProviderEntry,
    ProviderRequest,
    ProviderResponse,
    ProviderSettings,
    fixed_parameters,
)

PARAMETERS = frozenset({"max_tokens", "temperature", "top_p", "stop", "seed"})

ScriptFunction = Callable[[Sequence[Message]], Any]
_call_ids = itertools.count(1)


def create(settings: ProviderSettings, clients: ClientPool) -> ScriptedProvider:
    config = settings.scripted
    return ScriptedProvider(
        replies=list(config.replies) if config else [],
        when_exhausted=config.when_exhausted if config else "error",
        function=settings.script,
    )


ENTRY = ProviderEntry(create=create, parameters=fixed_parameters(PARAMETERS))


class ScriptedProvider:
    name = "scripted"

    def __init__(
        self,
        replies: Sequence[str | ScriptedReply | dict[str, Any]] = (),
        when_exhausted: str = "error",
        function: ScriptFunction | None = None,
    ) -> None:
        self._replies = [_as_reply(r) for r in replies]
        self._when_exhausted = when_exhausted
        self._function = function

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        reply = await self._next_reply(request.messages)
        if reply.text and request.on_text is not None:
            for piece in _pieces(reply.text):
                await request.on_text(piece)
        blocks: list[Any] = []
        if reply.thinking:
            blocks.append(ThinkingBlock(reply.thinking, provider="scripted"))
        if reply.text:
            blocks.append(TextBlock(reply.text))
        blocks += [
            ToolCallBlock(f"call_{next(_call_ids)}", c.name, dict(c.arguments)) for c in reply.tool_calls
        ]
        message = Message("assistant", tuple(blocks))
        prompt_chars = len(request.system) + sum(len(m.text) for m in request.messages)
        usage = Usage(input_tokens=prompt_chars // 4 + 1, output_tokens=len(reply.text) // 4 + 1)
        return ProviderResponse(message, usage, "tool_use" if reply.tool_calls else "end_turn")

    async def _next_reply(self, messages: Sequence[Message]) -> ScriptedReply:
        if self._function is not None:
            outcome = self._function(messages)
            if inspect.isawaitable(outcome):
                outcome = await outcome
            return _as_reply(outcome)
        if not self._replies:
            last_user = next((m.text for m in reversed(messages) if m.role == "user" and m.text), "")
            return ScriptedReply(text=last_user)
        turn = sum(1 for m in messages if m.role == "assistant")
        if turn < len(self._replies):
            return self._replies[turn]
        if self._when_exhausted == "cycle":
            return self._replies[turn % len(self._replies)]
        if self._when_exhausted == "repeat_last":
            return self._replies[-1]
        raise ProviderError(
            f"scripted provider has no reply for model turn {turn + 1} (it has {len(self._replies)}); "
            "add replies or set [scripted] when_exhausted = 'cycle' or 'repeat_last'",
            provider="scripted",
        )


def _as_reply(value: Any) -> ScriptedReply:
    if isinstance(value, ScriptedReply):
        return value
    if isinstance(value, str):
        return ScriptedReply(text=value)
    if isinstance(value, Message):
        return ScriptedReply(
            text=value.text,
            tool_calls=[ScriptedToolCall(name=c.name, arguments=c.arguments) for c in value.tool_calls],
        )
    if isinstance(value, dict):
        return ScriptedReply.model_validate(value)
    raise TypeError(f"a scripted reply must be a str, dict or ScriptedReply, not {type(value).__name__}")


def _pieces(text: str) -> list[str]:
    """Split text into word-sized deltas, as a streaming API would send it."""
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
