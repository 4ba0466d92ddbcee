"""What both OpenAI routes (Chat Completions in openai.py, the Responses API in
openai_responses.py) share: the client and its key, error mapping, usage and JSON habits.
Both route modules import this one and never each other."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from ..errors import ProviderError
from ..result import Usage
from .base import ClientPool, ProviderSettings
from .sdk_errors import map_sdk_error, retried_by_sdk
from .sdk_provider import SdkProvider

REASONING_MODELS = re.compile(r"^(o\d|gpt-5|codex)")
"""OpenAI's reasoning models: the Responses API route by default, with reasoning items replayed."""


class OpenAIProvider(SdkProvider):
    """What both OpenAI routes share: the client, its key, and error mapping."""

    family = "openai"

    def __init__(self, settings: ProviderSettings, clients: ClientPool) -> None:
        super().__init__(settings, clients)
        self._base_url = self._model.base_url or os.environ.get("OPENAI_BASE_URL")

    def _client(self) -> Any:
        model = self._model
        # keyless compatible servers get a placeholder: the SDK refuses an empty key
        api_key = self._api_key(["OPENAI_API_KEY"], required=not self._base_url) or "EMPTY"
        key = ("openai", self._base_url, api_key, model.timeout, model.max_retries)
        return self._clients.shared_client(key, lambda: self._new_client(api_key))

    def _new_client(self, api_key: str) -> Any:
        import openai

        return openai.AsyncOpenAI(
            api_key=api_key,
            base_url=self._base_url,
            timeout=self._model.timeout,
            max_retries=self._model.max_retries,
            http_client=openai.DefaultAioHttpClient(),  # why: providers/base.py, "Transport"
        )

    def _sdk_retried(self, err: Exception) -> bool:
        import openai

        return retried_by_sdk(openai, err)

    def _map_error(self, err: Exception) -> ProviderError | None:
        import openai

        return map_sdk_error(openai, err, api="OpenAI API", provider=self.name, timeout=self._model.timeout)


def compact_json(value: Any) -> str:
    """JSON as OpenAI itself writes tool arguments (no spaces)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def usage_counts(
    prompt: int | None, completion: int | None, prompt_details: Any, output_details: Any
) -> Usage:
    """Usage from OpenAI's counts, where the prompt count includes cached and cache-written tokens."""
    cached = getattr(prompt_details, "cached_tokens", None) or 0  # getattr(None, ...) is None too
    written = getattr(prompt_details, "cache_write_tokens", None) or 0
    return Usage(
        input_tokens=max((prompt or 0) - cached - written, 0),
        output_tokens=completion or 0,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=getattr(output_details, "reasoning_tokens", None) or 0,
    )
