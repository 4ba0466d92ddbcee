"""Map the exceptions of the Stainless-generated SDKs (anthropic, openai) to ProviderError.

Both SDKs share one exception hierarchy (APITimeoutError < APIConnectionError, and
APIStatusError with status_code and body), so one mapping serves both. The message
never includes request headers, so API keys can not leak into it.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from ..errors import MissingAPIKeyError, ProviderError

_HINTS = {
    401: "check the API key",
    403: "the API key may not have access to this model",
    404: "check [model] name and base_url",
    413: "the request is too large; shorten the conversation or preloaded files",
    429: "rate limited; try again later",
}


def is_retryable_status(status: int | None, kind: str | None) -> bool:
    return (status or 0) in (408, 409, 429) or (status or 0) >= 500 or kind == "overloaded_error"


def retried_by_sdk(sdk: ModuleType, err: Exception) -> bool:
    """The Stainless SDKs retry an HTTP error status and a failure to connect, not what follows a 200."""
    if isinstance(err, sdk.APIStatusError):
        return err.status_code != 200
    return isinstance(err, sdk.APIConnectionError)


def map_sdk_error(
    sdk: ModuleType, err: Exception, *, api: str, provider: str, timeout: float
) -> ProviderError | None:
    """The ProviderError for an exception of `sdk`, or None if it is not one of the SDK's.

    A timeout that wraps a refused connection is a connection failure: through aiohttp the SDKs
    report a server that is not listening (a local model server not started, a wrong base_url)
    as a timeout, which sent users looking at [model] timeout."""
    refused = connection_failure(err)
    if isinstance(err, sdk.APIConnectionError) and refused is not None:
        return ProviderError(f"could not reach the {api}: {refused}", provider=provider, retryable=True)
    if isinstance(err, sdk.APITimeoutError):
        return ProviderError(
            f"{api} request timed out after {timeout:g}s (after retries); raise [model] timeout or try again",
            provider=provider,
            retryable=True,
        )
    if isinstance(err, sdk.APIConnectionError):
        return ProviderError(
            f"could not reach the {api}: {err.__cause__ or err}", provider=provider, retryable=True
        )
    if isinstance(err, sdk.APIStatusError):
        body: Any = err.body if isinstance(err.body, dict) else {}
        detail = body.get("error", body)
        detail = detail if isinstance(detail, dict) else {}
        kind = detail.get("type") or detail.get("code") or getattr(err, "type", None)
        message = detail.get("message") or err.message
        status = err.status_code if err.status_code != 200 else None  # 200: an error event inside a stream
        hint = _HINTS.get(status or 0, "")
        label = f"{status} " if status else ""
        return ProviderError(
            f"{api} error {label}({kind or 'error'}): {message}" + (f" ({hint})" if hint else ""),
            provider=provider,
            status=status,
            kind=kind,
            retryable=is_retryable_status(status, kind),
        )
    if isinstance(err, (sdk.APIError, json.JSONDecodeError)):  # a body the SDK could not read
        detail = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        return unreadable_reply(api, detail, provider=provider)
    return None


def connection_failure(err: BaseException) -> str | None:
    """What went wrong connecting, in words, if `err` (or what it wraps) is a failure to connect:
    "cannot connect to 127.0.0.1:11434: Connect call failed", without aiohttp's object reprs."""
    seen: BaseException | None = err
    while seen is not None:
        host, port, os_error = (getattr(seen, name, None) for name in ("host", "port", "os_error"))
        if host is not None and isinstance(os_error, OSError):
            reason = os_error.strerror or str(os_error) or type(os_error).__name__
            if "Connect call failed" in str(os_error):
                reason = "connection refused (is the server running?)"
            return f"cannot connect to {host}:{port}: {reason}"
        if isinstance(seen, OSError) and not isinstance(seen, TimeoutError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return None


def unreadable_reply(api: str, detail: str, *, provider: str) -> ProviderError:
    """A 200 whose body is not JSON (a proxy's page, a cut body): worth one more try."""
    return ProviderError(
        f"{api} sent a reply that could not be read: {detail}", provider=provider, retryable=True
    )


def map_credentials_error(err: Exception, *, provider: str) -> ProviderError | None:
    """Vertex providers authenticate with Google Cloud credentials; say how to get them."""
    try:
        from google.auth.exceptions import GoogleAuthError
    except ImportError:  # pragma: no cover - google-auth comes with google-genai
        return None
    if not isinstance(err, GoogleAuthError):
        return None
    return MissingAPIKeyError(
        f"provider '{provider}' needs Google Cloud credentials: run `gcloud auth application-default login` "
        f"or set GOOGLE_APPLICATION_CREDENTIALS to a service-account file ({err})",
        provider=provider,
    )
