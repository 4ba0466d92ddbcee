"""Anthropic Messages API (direct and Vertex) through the official `anthropic` SDK.

The SDK is imported on first use. Converted messages are cached by message id, so a
turn converts only what is new; cache breakpoints are added to copies, never to the
cached dicts. Retries with backoff (honouring retry-after) are the SDK's own, set by
`[model] max_retries`; overload errors that arrive inside a stream, which the SDK
does not retry, are retried here when no text has been emitted yet.
"""

from __future__ import annotations

from typing import Any

from ..errors import ProviderError
from ..messages import (
    ImageBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
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
from .credentials import api_key_from
from .retry import TextSink
from .sdk_errors import map_credentials_error, map_sdk_error, retried_by_sdk
from .sdk_provider import SdkProvider

PARAMETERS = frozenset(
    {"max_tokens", "temperature", "top_p", "top_k", "stop", "thinking", "reasoning_effort"}
    | {"extra_headers", "extra_body"}
)
DEFAULT_MAX_TOKENS = 4096
# Above this the SDK refuses non-streaming requests with its default timeout.
_STREAM_ABOVE_MAX_TOKENS = 21_000
_CACHE = {"type": "ephemeral"}
_SAMPLING_IN_BODY = ("temperature", "top_p", "top_k")


WARM_UP = ("anthropic", "anthropic.resources.messages", "anthropic.lib.streaming", "httpcore2")


def create(settings: ProviderSettings, clients: ClientPool) -> AnthropicProvider:
    return AnthropicProvider(settings, clients)


ENTRY = ProviderEntry(create=create, parameters=fixed_parameters(PARAMETERS), warm_up=WARM_UP)


class AnthropicProvider(SdkProvider):
    family = "anthropic"

    def __init__(self, settings: ProviderSettings, clients: ClientPool) -> None:
        super().__init__(settings, clients)
        self._converted = ConversionCache(self._convert)
        self._options = self._request_options(settings)

    # -- client --------------------------------------------------------------------------------

    def _client(self) -> Any:
        model = self._model
        if self.name == "anthropic_vertex":
            token = vertex.access_token(model, self.name)
            key: tuple[Any, ...] = ("anthropic_vertex", model.base_url, model.project_id, model.region, token)
            return self._clients.shared_client(
                (*key, model.timeout, model.max_retries), lambda: self._new_vertex(token)
            )
        api_key = self._api_key(["ANTHROPIC_API_KEY"], required=False)
        auth_token = (
            None
            if api_key or model.api_key_env
            else api_key_from(["ANTHROPIC_AUTH_TOKEN"], provider="anthropic")
        )
        if not api_key and not auth_token:
            raise self._missing_key(["ANTHROPIC_API_KEY"])
        key = ("anthropic", model.base_url, api_key, auth_token, model.timeout, model.max_retries)
        return self._clients.shared_client(key, lambda: self._new_client(api_key, auth_token))

    def _new_client(self, api_key: str | None, auth_token: str | None) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=api_key,
            auth_token=auth_token,
            base_url=self._model.base_url,
            timeout=self._model.timeout,
            max_retries=self._model.max_retries,
            http_client=anthropic.DefaultAioHttpClient(),  # why: providers/base.py, "Transport"
        )

    def _new_vertex(self, token: str | None) -> Any:
        import anthropic

        model = self._model
        options: dict[str, Any] = {
            "timeout": model.timeout,
            "max_retries": model.max_retries,
            "http_client": anthropic.DefaultAioHttpClient(),
        }
        if token:
            options["access_token"] = token
        if model.project_id:
            options["project_id"] = model.project_id
        if model.region:
            options["region"] = model.region
        if model.base_url:
            options["base_url"] = model.base_url
        try:
            return anthropic.AsyncAnthropicVertex(**options)  # reads its standard env vars for the rest
        except ValueError as err:  # no region: the SDK says which variable; add our key
            raise ProviderError(
                f"provider 'anthropic_vertex': {err} (or set [model] region)", provider=self.name
            ) from None

    # -- request -------------------------------------------------------------------------------

    def _request_options(self, settings: ProviderSettings) -> dict[str, Any]:
        params = settings.parameters
        budget = params.thinking.budget_tokens if params.thinking else None
        options: dict[str, Any] = {
            "model": self._model.name,
            # thinking counts against max_tokens: leave room for the answer too
            "max_tokens": params.max_tokens or DEFAULT_MAX_TOKENS + (budget or 0),
        }
        if params.stop:
            options["stop_sequences"] = params.stop
        if params.thinking is not None:
            options["thinking"] = params.thinking.model_dump(exclude_none=True)
        if params.reasoning_effort is not None:
            options["output_config"] = {"effort": params.reasoning_effort}
        # The 2.x SDK has no sampling arguments; the API takes them in the body.
        body = {
            name: getattr(params, name) for name in _SAMPLING_IN_BODY if getattr(params, name) is not None
        }
        body.update(params.extra_body or {})
        if body:
            options["extra_body"] = body
        if params.extra_headers:
            options["extra_headers"] = params.extra_headers
        return options

    def build_request(self, request: ProviderRequest) -> dict[str, Any]:
        """The keyword arguments of `messages.create` for `request` (public for tests)."""
        cache = not self._model.disable_automatic_caching
        messages = self._converted.convert_all(request.messages)
        if cache and messages:
            messages[-1] = _with_cache_breakpoint(messages[-1])
        kwargs = dict(self._options, messages=messages)
        if request.system:
            system: dict[str, Any] = {"type": "text", "text": request.system}
            kwargs["system"] = [dict(system, cache_control=_CACHE) if cache else system]
        if request.tools:
            kwargs["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        return kwargs

    def _convert(self, message: Message) -> dict[str, Any]:
        parts = [block for b in message.content if (block := self._block(b)) is not None]
        return {"role": message.role, "content": _compact(parts or [{"type": "text", "text": "(empty)"}])}

    def _block(self, block: Any) -> dict[str, Any] | None:
        if isinstance(block, TextBlock):
            return {"type": "text", "text": block.text} if block.text else None
        if isinstance(block, ToolCallBlock):
            return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.arguments}
        if isinstance(block, ToolResultBlock):
            parts = [b for b in (self._block(c) for c in block.content) if b is not None]
            return {
                "type": "tool_result",
                "tool_use_id": block.tool_call_id,
                "content": _compact(parts) or "(no output)",
                "is_error": block.is_error,
            }
        if isinstance(block, ThinkingBlock):
            if block.provider not in (None, "anthropic") or not block.signature:
                return None  # reasoning from another provider can not be replayed here
            if block.redacted:
                return {"type": "redacted_thinking", "data": block.signature}
            return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
        if isinstance(block, ImageBlock):
            source = {"type": "base64", "media_type": block.media_type, "data": block.data}
            return {"type": "image", "source": source}
        return None

    # -- call ----------------------------------------------------------------------------------

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        client = self._client()
        kwargs = self.build_request(request)
        stream = request.on_text is not None or kwargs["max_tokens"] > _STREAM_ABOVE_MAX_TOKENS

        async def attempt(on_text: TextSink) -> ProviderResponse:
            if stream:
                return _response(await self._stream(client, kwargs, on_text))
            return _response(await client.messages.create(**kwargs))

        return await self._with_retries(attempt, request.on_text)

    def _sdk_retried(self, err: Exception) -> bool:
        import anthropic

        return retried_by_sdk(anthropic, err)

    def _map_error(self, err: Exception) -> ProviderError | None:
        import anthropic

        return map_credentials_error(err, provider=self.name) or map_sdk_error(
            anthropic, err, api="Anthropic API", provider=self.name, timeout=self._model.timeout
        )

    async def _stream(self, client: Any, kwargs: dict[str, Any], on_text: TextSink) -> Any:
        complete = False
        async with client.messages.stream(**kwargs) as events:
            async for event in events:
                if event.type == "text":
                    await on_text(event.text)
                elif event.type == "message_stop":
                    complete = True
            if not complete:  # the connection closed mid-reply: never keep half a message
                raise ProviderError(
                    "the Anthropic stream ended before the reply was complete",
                    provider=self.name,
                    retryable=True,
                )
            return await events.get_final_message()


def _compact(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone text block as a plain string, as the API allows: less for the SDK to copy and encode."""
    return parts[0]["text"] if len(parts) == 1 and parts[0]["type"] == "text" else parts


def _with_cache_breakpoint(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of `message` whose last cacheable block carries a cache breakpoint."""
    content = message["content"]
    content = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    for i in range(len(content) - 1, -1, -1):
        if content[i].get("type") not in ("thinking", "redacted_thinking"):
            content[i] = dict(content[i], cache_control=_CACHE)
            break
    return {"role": message["role"], "content": content}


def _response(reply: Any) -> ProviderResponse:
    blocks: list[Any] = []
    for block in reply.content:
        kind = block.type
        if kind == "text":
            blocks.append(TextBlock(block.text))
        elif kind == "tool_use":
            blocks.append(ToolCallBlock(block.id, block.name, dict(block.input or {})))
        elif kind == "thinking":
            blocks.append(ThinkingBlock(block.thinking, signature=block.signature, provider="anthropic"))
        elif kind == "redacted_thinking":
            blocks.append(ThinkingBlock("", signature=block.data, redacted=True, provider="anthropic"))
    return ProviderResponse(
        message=Message("assistant", tuple(blocks)),
        usage=_usage(reply.usage),
        stop_reason=reply.stop_reason or "end_turn",
    )


def _usage(usage: Any) -> Usage:
    details = getattr(usage, "output_tokens_details", None)
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_tokens=usage.cache_read_input_tokens or 0,
        cache_write_tokens=usage.cache_creation_input_tokens or 0,
        reasoning_tokens=getattr(details, "thinking_tokens", None) or 0,
    )
