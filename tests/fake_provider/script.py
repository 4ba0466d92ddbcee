"""Provider-neutral descriptions of what the fake server should answer next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class TurnUsage:
    input_tokens: int = 10
    output_tokens: int = 5
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Turn:
    """One model reply: optional thinking, text, tool calls, usage."""

    text: str = ""
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    thinking: str | None = None
    usage: TurnUsage = field(default_factory=TurnUsage)
    stop_reason: str | None = None
    quirks: frozenset[str] = frozenset()
    """Compatible-server habits to imitate: 'no_tool_call_ids', 'empty_arguments', 'no_usage'."""


@dataclass(frozen=True)
class Fault:
    """A failure instead of a reply.

    status: HTTP status with an error body (429, 500, 529...), or 200 with `in_stream`
    to send an error event inside an SSE stream. `cut_stream_after` closes a stream
    after that many events; `hang` sleeps that many seconds before answering;
    `malformed` sends a body that is not valid JSON. `drop` ends the connection with no
    reply at all: "reset" with a TCP reset, "close" with a clean close (curl's "empty
    reply from server").
    """

    status: int = 500
    error_type: str = "api_error"
    message: str = "Internal server error"
    retry_after: str | None = None
    in_stream: bool = False
    cut_stream_after: int | None = None
    hang: float = 0.0
    malformed: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    drop: Literal["reset", "close"] | None = None
