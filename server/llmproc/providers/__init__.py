"""Provider registry. Provider modules are imported only when a process needs one,
and each imports its SDK lazily, so loading programs stays fast."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import ModelConfig
    from ..kernel import Kernel
    from ..program import LLMProgram
    from .base import Provider

_MODULES = {
    "anthropic": "anthropic",
    "anthropic_vertex": "anthropic",
    "gemini": "gemini",
    "gemini_vertex": "gemini",
    "mcp_sampling": "mcp_sampling",
    "openai": "openai",
    "scripted": "scripted",
}


def _module(provider: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{_MODULES[provider]}")  # names are validated by config


def supported_parameters(model: ModelConfig) -> tuple[frozenset[str], str]:
    """The [parameters] keys the program's provider (and API route) accepts, and its name for errors."""
    module = _module(model.provider)
    route = getattr(module, "parameters_for", None)
    if route is not None:
        parameters, where = route(model)
        return parameters, where
    return module.PARAMETERS, f"provider '{model.provider}'"


def warm_up(providers: Iterable[str]) -> None:
    """Import what the first request of each of these providers needs: the modules a provider
    module names in WARM_UP (its SDK, the aiohttp transport, the request's resources). Slow (the
    Anthropic SDK alone takes a second or more): the MCP server does it in a thread once it
    serves, so its first call costs what the next does."""
    for provider in sorted(set(providers)):
        for name in getattr(_module(provider), "WARM_UP", ()):
            importlib.import_module(name)


def create_provider(program: LLMProgram, kernel: Kernel) -> Provider:
    """A fresh provider instance for one process."""
    return _module(program.provider).create(program, kernel)
