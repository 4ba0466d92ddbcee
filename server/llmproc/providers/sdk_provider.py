"""What every provider built on a vendor SDK shares: its settings, the shared client pool, the
API key lookup, and one request with error mapping and the retries the SDK does not do.

A provider module subclasses `SdkProvider` and writes only what is its own: building its
client, converting messages, the request, and which failures its SDK retried already.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ..errors import MissingAPIKeyError, ProviderError
from .base import ClientPool, ProviderResponse, ProviderSettings
from .credentials import api_key_from, missing_key
from .retry import TextSink, request_with_retries


class SdkProvider:
    family = ""
    """The vendor, as errors about keys name it (anthropic, openai, gemini)."""

    def __init__(self, settings: ProviderSettings, clients: ClientPool) -> None:
        self.name = settings.provider
        self._model = settings.model
        self._params = settings.parameters
        self._clients = clients

    def _api_key(self, default_names: Sequence[str], *, required: bool = True) -> str | None:
        """The key from [model] api_key_env, else from the first of `default_names` that is set;
        a missing key is an error naming the variables, unless not `required`."""
        key = api_key_from(self._key_names(default_names), provider=self.family)
        if key is None and required:
            raise self._missing_key(default_names)
        return key

    def _missing_key(self, default_names: Sequence[str]) -> MissingAPIKeyError:
        """The error for a key that is not set: it names the variables to set."""
        named = bool(self._model.api_key_env)
        return missing_key(self._key_names(default_names), provider=self.family, named_in_program=named)

    def _key_names(self, default_names: Sequence[str]) -> list[str]:
        return [self._model.api_key_env] if self._model.api_key_env else list(default_names)

    async def _with_retries(
        self, attempt: Callable[[TextSink], Awaitable[ProviderResponse]], on_text: TextSink | None
    ) -> ProviderResponse:
        """`attempt(forward)` once, and again while retrying makes sense (retry.py)."""
        return await request_with_retries(
            attempt,
            on_text=on_text,
            map_error=self._map_error,
            max_retries=self._model.max_retries,
            sdk_retried=self._sdk_retried,
        )

    def _map_error(self, err: Exception) -> ProviderError | None:
        """The ProviderError an SDK exception means, or None when it is not the SDK's."""
        raise NotImplementedError

    def _sdk_retried(self, err: Exception) -> bool:
        """Whether the SDK already spent its retries on this kind of failure."""
        raise NotImplementedError
