"""Gemini (API and Vertex AI) through `google-genai` (`client.aio`).

Gemini thinking models attach thought signatures to the parts of a reply, and want
those parts back unchanged on the next turn. A Gemini reply therefore keeps its raw
parts in `Message.provider_data["gemini_parts"]`, and they are replayed verbatim;
messages from other providers are converted from their neutral blocks. Automatic
function calling is off: the process loop runs the tools.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
from typing import Any

from ..errors import ProviderError
from ..messages import ImageBlock, Message, TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock
from ..result import Usage
from . import vertex
from .base import (
    ClientPool,
    ConversionCache,
    ProviderEntry,
    ProviderRequest,
    ProviderResponse,
    ProviderSettings,
    fixed_parameters,
)
from .retry import TextSink
from .sdk_errors import connection_failure, is_retryable_status, map_credentials_error, unreadable_reply
from .sdk_provider import SdkProvider

_SDK_RETRIED_STATUSES = (408, 409, 429, 500, 502, 503, 504)
"""google-genai retries these statuses; connection errors and unreadable replies are retried here."""

PARAMETERS = frozenset(
    {"max_tokens", "temperature", "top_p", "top_k", "stop", "seed", "thinking_budget"}
    | {"extra_headers", "extra_body"}
)
_PARTS = "gemini_parts"
_STOP_REASONS = {"STOP": "end_turn", "MAX_TOKENS": "max_tokens", "SAFETY": "content_filter"}
_call_ids = itertools.count(1)


WARM_UP = ("google.genai", "google.genai.types", "google.genai.errors", "aiohttp", "httpcore2")


def create(settings: ProviderSettings, clients: ClientPool) -> GeminiProvider:
    return GeminiProvider(settings, clients)


ENTRY = ProviderEntry(create=create, parameters=fixed_parameters(PARAMETERS), warm_up=WARM_UP)


class GeminiProvider(SdkProvider):
    family = "gemini"

    def __init__(self, settings: ProviderSettings, clients: ClientPool) -> None:
        super().__init__(settings, clients)
        self._converted = ConversionCache(_content)
        self._options = self._request_options(settings)

    # -- client --------------------------------------------------------------------------------

    def _client(self) -> Any:
        model = self._model
        if self.name == "gemini_vertex":
            token = vertex.access_token(model, self.name)
            key: tuple[Any, ...] = ("gemini_vertex", model.project_id, model.region, model.base_url, token)
            return self._clients.shared_client(
                (*key, model.timeout, model.max_retries), lambda: self._new(None, token), _close
            )
        api_key = self._api_key(["GEMINI_API_KEY", "GOOGLE_API_KEY"])
        key = ("gemini", model.base_url, api_key, model.timeout, model.max_retries)
        return self._clients.shared_client(key, lambda: self._new(api_key, None), _close)

    def _new(self, api_key: str | None, token: str | None) -> Any:
        from google import genai
        from google.genai import types

        model = self._model
        retry = types.HttpRetryOptions(
            attempts=model.max_retries + 1,
            initial_delay=0.5,
            http_status_codes=list(_SDK_RETRIED_STATUSES),
        )
        http = types.HttpOptions(
            base_url=model.base_url,
            timeout=int(model.timeout * 1000),  # milliseconds
            retry_options=retry,
            headers=self._params.extra_headers,
            extra_body=self._params.extra_body,
        )
        if api_key is not None:
            return genai.Client(api_key=api_key, http_options=http)
        credentials = None
        if token:
            from google.oauth2.credentials import Credentials

            credentials = Credentials(token)
        return genai.Client(
            vertexai=True,
            project=model.project_id or os.environ.get("GOOGLE_CLOUD_PROJECT"),
            location=model.region or os.environ.get("GOOGLE_CLOUD_LOCATION") or "global",
            credentials=credentials,
            http_options=http,
        )

    # -- request -------------------------------------------------------------------------------

    def _request_options(self, settings: ProviderSettings) -> dict[str, Any]:
        """The generation config the program's [parameters] set, the same for every request."""
        params = settings.parameters
        simple = {
            "max_output_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "seed": params.seed,
            "stop_sequences": params.stop,
        }
        options: dict[str, Any] = {"automatic_function_calling": {"disable": True}}
        options.update({k: v for k, v in simple.items() if v is not None})
        if params.thinking_budget is not None:
            options["thinking_config"] = {"thinking_budget": params.thinking_budget, "include_thoughts": True}
        return options

    def _config(self, request: ProviderRequest) -> dict[str, Any]:
        config = dict(self._options)
        if request.system:
            config["system_instruction"] = request.system
        if request.tools:
            declarations = [
                {"name": t.name, "description": t.description, "parameters_json_schema": t.parameters}
                for t in request.tools
            ]
            config["tools"] = [{"function_declarations": declarations}]
        return config

    def build_request(self, request: ProviderRequest) -> dict[str, Any]:
        """The keyword arguments of `models.generate_content` for `request` (public for tests)."""
        contents = self._converted.convert_all(request.messages)
        return {"model": self._model.name, "contents": contents, "config": self._config(request)}

    # -- call ----------------------------------------------------------------------------------

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        client = self._client()
        kwargs = self.build_request(request)
        stream = request.on_text is not None

        async def attempt(on_text: TextSink) -> ProviderResponse:
            if not stream:
                return _response([await client.aio.models.generate_content(**kwargs)])
            from google.genai import errors

            chunks = []
            try:
                async for chunk in await client.aio.models.generate_content_stream(**kwargs):
                    chunks.append(chunk)
                    for part in _parts_of(chunk):
                        if part.text and not part.thought:
                            await on_text(part.text)
                complete = any(_finish_reason(c) for c in chunks)
            except errors.UnknownApiResponseError:  # an event cut off in the middle
                complete = False
            if not complete:
                raise ProviderError(
                    "the Gemini stream ended before the reply was complete",
                    provider=self.name,
                    retryable=True,
                )
            return _response(chunks)

        return await self._with_retries(attempt, request.on_text)

    def _sdk_retried(self, err: Exception) -> bool:
        """What google-genai's own retries (HttpRetryOptions) cover: retried statuses, and
        failures to connect or a connection closed before the reply began."""
        import aiohttp
        from google.genai import errors

        if isinstance(err, errors.APIError):
            return err.code in _SDK_RETRIED_STATUSES
        return isinstance(
            err, (aiohttp.ClientConnectorError, aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)
        )

    def _map_error(self, err: Exception) -> ProviderError | None:
        import aiohttp
        import httpx2
        from google.genai import errors

        credentials = map_credentials_error(err, provider=self.name)
        if credentials is not None:
            return credentials
        if isinstance(err, errors.APIError):
            status = err.code if isinstance(err.code, int) else None
            kind = err.status or None
            hint = (
                " (check the API key)"
                if status in (400, 401, 403) and "key" in str(err.message).lower()
                else ""
            )
            return ProviderError(
                f"Gemini API error {status} ({kind or 'error'}): {err.message}{hint}",
                provider=self.name,
                status=status,
                kind=kind,
                retryable=is_retryable_status(status, kind),
            )
        if isinstance(err, (errors.UnknownApiResponseError, json.JSONDecodeError)):
            # not the SDK's message: it quotes the whole body
            return unreadable_reply("Gemini API", "the body is not JSON", provider=self.name)
        # aiohttp raises asyncio.TimeoutError: the builtin TimeoutError from Python 3.11, not before
        if isinstance(err, (TimeoutError, asyncio.TimeoutError, httpx2.TimeoutException)):
            return ProviderError(
                f"Gemini request timed out after {self._model.timeout:g}s; raise [model] timeout",
                provider=self.name,
                retryable=True,
            )
        if isinstance(err, (aiohttp.ClientError, httpx2.TransportError, ConnectionError)):
            detail = connection_failure(err) or str(err) or type(err).__name__
            return ProviderError(
                f"could not reach the Gemini API: {detail}",
                provider=self.name,
                retryable=True,
            )
        return None


async def _close(client: Any) -> None:
    await client.aio.aclose()


def _content(message: Message) -> dict[str, Any]:
    """A Gemini reply is replayed as received (signatures included); others convert block by block."""
    raw = message.provider_data.get(_PARTS) if isinstance(message.provider_data, dict) else None
    parts = raw if raw is not None else [p for b in message.content if (p := _part(b)) is not None]
    role = "model" if message.role == "assistant" else "user"
    return {"role": role, "parts": parts or [{"text": " "}]}


def _part(block: Any) -> dict[str, Any] | None:
    if isinstance(block, TextBlock):
        return {"text": block.text} if block.text else None
    if isinstance(block, ToolCallBlock):
        return {"function_call": {"id": block.id, "name": block.name, "args": block.arguments}}
    if isinstance(block, ToolResultBlock):
        key = "error" if block.is_error else "output"
        response: dict[str, Any] = {
            "id": block.tool_call_id,
            "name": block.name,
            "response": {key: block.text},
        }
        images = [b for b in block.content if isinstance(b, ImageBlock)]
        if images:  # multimodal function responses carry images as their own parts
            response["parts"] = [
                {"inline_data": {"mime_type": b.media_type, "data": base64.b64decode(b.data)}} for b in images
            ]
        return {"function_response": response}
    if isinstance(block, ImageBlock):
        return {"inline_data": {"mime_type": block.media_type, "data": base64.b64decode(block.data)}}
    return None  # thinking from other providers can not be replayed here


def _parts_of(response: Any) -> list[Any]:
    candidates = response.candidates or []
    content = candidates[0].content if candidates else None
    return list(content.parts or []) if content else []


def _finish_reason(response: Any) -> str | None:
    candidates = response.candidates or []
    reason = candidates[0].finish_reason if candidates else None
    return str(getattr(reason, "value", reason)) if reason else None


def _merged(parts: list[Any]) -> list[Any]:
    """Join streamed text pieces of the same kind; a signed part starts a new one."""
    merged: list[Any] = []
    for part in parts:
        last = merged[-1] if merged else None
        if (
            last is not None
            and part.text is not None
            and last.text is not None
            and bool(last.thought) == bool(part.thought)
            and not last.thought_signature
            and not part.function_call
        ):
            merged[-1] = last.model_copy(
                update={"text": last.text + part.text, "thought_signature": part.thought_signature}
            )
        else:
            merged.append(part)
    return merged


def _response(chunks: list[Any]) -> ProviderResponse:
    parts = _merged([p for c in chunks for p in _parts_of(c)])
    blocks: list[Any] = []
    for part in parts:
        if part.function_call is not None:
            call = part.function_call
            blocks.append(
                ToolCallBlock(
                    call.id or f"gemini_call_{next(_call_ids)}", call.name or "", dict(call.args or {})
                )
            )
        elif part.text and part.thought:
            blocks.append(ThinkingBlock(part.text, provider="gemini"))
        elif part.text:
            blocks.append(TextBlock(part.text))
    # Replay the parts as received (signatures included), with the ids we gave to id-less calls.
    ids = iter(b.id for b in blocks if isinstance(b, ToolCallBlock))
    raw = []
    for part in parts:
        dumped = part.model_dump(mode="json", exclude_none=True)
        if part.function_call is not None:
            dumped["function_call"]["id"] = next(ids)
        raw.append(dumped)
    reason = next((r for r in map(_finish_reason, reversed(chunks)) if r), None)
    usage = next((c.usage_metadata for c in reversed(chunks) if c.usage_metadata), None)
    stop = (
        "tool_use"
        if any(isinstance(b, ToolCallBlock) for b in blocks)
        else _STOP_REASONS.get(reason or "STOP", "end_turn")
    )
    message = Message("assistant", tuple(blocks), provider_data={_PARTS: raw})
    return ProviderResponse(message, _usage(usage), stop)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    cached = usage.cached_content_token_count or 0
    thoughts = usage.thoughts_token_count or 0
    return Usage(
        input_tokens=max((usage.prompt_token_count or 0) - cached, 0)
        + (usage.tool_use_prompt_token_count or 0),
        output_tokens=(usage.candidates_token_count or 0) + thoughts,  # thoughts are billed as output
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )
