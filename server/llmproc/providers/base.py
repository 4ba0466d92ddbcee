"""The Provider protocol: the narrow seam between the process loop and one model API.

A provider turns neutral messages into one API request and the reply back into a
neutral message. It owns its SDK (imported lazily), its conversion cache, retries and
error mapping; the loop sees only `ProviderRequest` -> `ProviderResponse` or a
`ProviderError`.

Transport: all three SDKs send their requests through aiohttp, not their default httpx
pool, whose CPU cost per request grows with the number in flight (at 200 concurrent
requests a plain Anthropic call costs about 4.5 ms of CPU on httpx and 2 ms on aiohttp;
`bench/mcp_server.py concurrent` shows it). google-genai picks aiohttp by itself when
it is installed; anthropic and openai are given their `DefaultAioHttpClient`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..config import ModelConfig, ParametersConfig, ScriptedConfig
from ..messages import Message
from ..result import Usage
from ..shared_clients import Closer
from ..tools.base import ToolSpec


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What a provider is built from: the program's [model], [parameters] and [scripted]
    sections and, for the scripted provider, a Python script; never the whole program."""

    model: ModelConfig
    parameters: ParametersConfig
    scripted: ScriptedConfig | None = None
    script: Callable[[Sequence[Message]], Any] | None = None

    @property
    def provider(self) -> str:
        return self.model.provider


class ClientPool(Protocol):
    """Where a provider gets its SDK client: one per event loop and configuration, shared by
    every process that uses it and closed with the loop (the kernel is one)."""

    def shared_client(self, key: Hashable, factory: Callable[[], Any], close: Closer = ...) -> Any: ...


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


T = TypeVar("T")


class ConversionCache(Generic[T]):
    """A provider's form of each message, by message id, so that a turn converts only what is new.

    Messages are immutable, so a conversion never goes stale; entries of messages that left the
    history (reset, goto) are dropped once they outnumber the live ones.
    """

    def __init__(self, convert: Callable[[Message], T]) -> None:
        self._convert = convert
        self._items: dict[str, T] = {}

    def convert_all(self, messages: Sequence[Message]) -> list[T]:
        items = self._items
        converted = [
            items[m.id] if m.id in items else items.setdefault(m.id, self._convert(m)) for m in messages
        ]
        if len(items) > 2 * len(messages) + 64:
            live = {m.id for m in messages}
            self._items = {k: v for k, v in items.items() if k in live}
        return converted


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """What a provider module offers the registry, as its module-level `ENTRY`.

    `create` builds the provider of one process; `parameters` says which [parameters] keys the
    program's route accepts (and how errors name that route), which is how programs are
    validated; `warm_up` names the modules its first request imports (see `providers.warm_up`).
    """

    create: Callable[[ProviderSettings, ClientPool], Provider]
    parameters: Callable[[ModelConfig], tuple[frozenset[str], str]]
    warm_up: tuple[str, ...] = ()


def fixed_parameters(names: frozenset[str]) -> Callable[[ModelConfig], tuple[frozenset[str], str]]:
    """The `parameters` of a provider that accepts the same keys on every route."""

    def parameters(model: ModelConfig) -> tuple[frozenset[str], str]:
        return names, f"provider '{model.provider}'"

    return parameters
