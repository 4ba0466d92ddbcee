"""What an API module of the fake answers with, and what it tells the server of a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class JsonResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    malformed: bool = False


@dataclass
class SseResponse:
    frames: list[str]
    cut_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConversationView:
    """What auto mode needs to know about a request, extracted by the API module."""

    last_is_tool_result: bool
    last_tool_result_text: str
    first_tool: tuple[str, dict[str, Any]] | None
    last_user_text: str
