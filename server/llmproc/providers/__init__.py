"""Provider registry. Provider modules are imported only when a process needs one,
and each imports its SDK lazily, so loading programs stays fast."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..kernel import Kernel
    from ..program import LLMProgram
    from .base import Provider

_MODULES = {
    "anthropic": "anthropic",
    "anthropic_vertex": "anthropic",
    "gemini": "gemini",
    "gemini_vertex": "gemini",
    "openai": "openai",
    "scripted": "scripted",
}


def _module(provider: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{_MODULES[provider]}")  # names are validated by config


def supported_parameters(provider: str) -> frozenset[str]:
    """The [parameters] keys a provider accepts."""
    parameters: frozenset[str] = _module(provider).PARAMETERS
    return parameters


def create_provider(program: LLMProgram, kernel: Kernel) -> Provider:
    """A fresh provider instance for one process."""
    return _module(program.provider).create(program, kernel)
