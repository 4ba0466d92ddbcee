"""The Provider protocol: the narrow seam between the process loop and one model API.

A provider turns neutral messages into one API request and the reply back into a
neutral message. It owns its SDK (imported lazily), its conversion cache, retries and
error mapping; the loop sees only `ProviderRequest` -> `ProviderResponse` or a
`ProviderError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..messages import Message
from ..result import Usage
from ..tools.base import ToolSpec


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    system: str
    messages: Sequence[Message]
    tools: Sequence[ToolSpec]
    on_text: Callable[[str], Awaitable[None]] | None = None
    """When set, the provider streams and calls this with each text delta."""


@dataclass(frozen=True, slots=True)
class ProviderResponse:
    message: Message
    usage: Usage
    stop_reason: str


class Provider(Protocol):
    name: str

    async def complete(self, request: ProviderRequest) -> ProviderResponse: ...
