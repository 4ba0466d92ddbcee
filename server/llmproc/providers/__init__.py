"""The provider registry: which module serves each provider name, and its family.

Provider modules are imported only when a process needs one, and each imports its SDK
lazily, so loading programs stays fast. Each module's contract is its `ENTRY` (a
`ProviderEntry`: create, parameters, warm-up). The family says whose messages a provider
can replay: snapshots of one family restore on any member of it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from ..config import ModelConfig
from ..errors import ProgramError
from .base import ClientPool, Provider, ProviderEntry, ProviderSettings


@dataclass(frozen=True, slots=True)
class Registered:
    module: str
    family: str
    asks_client: bool = False
    """The provider is the MCP client's own model (it needs the client channel, client_channel.py)."""


REGISTRY: dict[str, Registered] = {
    "anthropic": Registered("anthropic", "anthropic"),
    "anthropic_vertex": Registered("anthropic", "anthropic"),
    "gemini": Registered("gemini", "gemini"),
    "gemini_vertex": Registered("gemini", "gemini"),
    "mcp_sampling": Registered("mcp_sampling", "mcp_sampling", asks_client=True),
    "openai": Registered("openai", "openai"),
    "scripted": Registered("scripted", "scripted"),
}


def entry(provider: str) -> ProviderEntry:
    """The `ENTRY` of the module serving `provider` (imported on first use)."""
    registered = REGISTRY.get(provider)
    if registered is None:  # config validates names; a caller building settings by hand may not
        raise ProgramError(f"unknown provider '{provider}'; known providers: {', '.join(sorted(REGISTRY))}")
    found = importlib.import_module(f"{__name__}.{registered.module}").ENTRY
    assert isinstance(found, ProviderEntry), f"{registered.module}.ENTRY is not a ProviderEntry"
    return found


def family(provider: str) -> str:
    """Providers whose messages replay on each other share a family (anthropic_vertex: anthropic)."""
    registered = REGISTRY.get(provider)
    return registered.family if registered else provider


def asks_client(provider: str) -> bool:
    """Whether the provider's model is the MCP client's (each turn is a request to the client)."""
    registered = REGISTRY.get(provider)
    return registered is not None and registered.asks_client


def supported_parameters(model: ModelConfig) -> tuple[frozenset[str], str]:
    """The [parameters] keys the program's provider (and API route) accepts, and its name for errors."""
    return entry(model.provider).parameters(model)


def warm_up(providers: Iterable[str]) -> None:
    """Import what the first request of each of these providers needs: the modules its entry
    names in `warm_up` (its SDK, the aiohttp transport, the request's resources). Slow (the
    Anthropic SDK alone takes a second or more): the MCP server does it in a thread once it
    serves, so its first call costs what the next does."""
    for provider in sorted(set(providers)):
        for name in entry(provider).warm_up:
            importlib.import_module(name)


def create_provider(settings: ProviderSettings, clients: ClientPool) -> Provider:
    """A fresh provider instance for one process."""
    return entry(settings.provider).create(settings, clients)
