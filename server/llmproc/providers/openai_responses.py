"""OpenAI's Responses API: the route for reasoning models (o-series, gpt-5, codex).

Requests are stateless (`store=False`): each carries the whole conversation, so fork,
goto and snapshots need nothing kept on OpenAI's side. Reasoning items come back with
`encrypted_content` and are replayed verbatim after the turn that produced them, which
keeps the model's chain of thought across tool calls; their summaries become thinking
blocks. Items are replayed without the ids of stored items, which a stateless request
may not reference.
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
    tool_arguments_from_json,
)
from .base import ClientPool, ConversionCache, ProviderRequest, ProviderResponse, ProviderSettings
from .openai_common import REASONING_MODELS, OpenAIProvider, compact_json, usage_counts
from .retry import TextSink

_ITEMS = "openai_items"
"""provider_data key: this reply's output items, in the form a later request replays them."""
_FATAL_STREAM_ERRORS = ("invalid", "context_length", "content_policy", "unsupported")


class OpenAIResponsesProvider(OpenAIProvider):
    def __init__(self, settings: ProviderSettings, clients: ClientPool) -> None:
        super().__init__(settings, clients)
        self._converted = ConversionCache(_convert)
        self._options = self._request_options(settings)

    def _request_options(self, settings: ProviderSettings) -> dict[str, Any]:
        params = settings.parameters
        options: dict[str, Any] = {"model": self._model.name, "store": False}
        if params.max_tokens is not None:
            options["max_output_tokens"] = params.max_tokens
        if params.temperature is not None:
            options["temperature"] = params.temperature
        if params.top_p is not None:
            options["top_p"] = params.top_p
        reasoning = {
            key: value
            for key, value in (("effort", params.reasoning_effort), ("summary", params.reasoning_summary))
            if value is not None
        }
        if reasoning:
            options["reasoning"] = reasoning
        if reasoning or REASONING_MODELS.match(self._model.name):
            options["include"] = ["reasoning.encrypted_content"]  # what store=False replays
        if params.extra_body:
            options["extra_body"] = dict(params.extra_body)
        if params.extra_headers:
            options["extra_headers"] = params.extra_headers
        return options

    def build_request(self, request: ProviderRequest) -> dict[str, Any]:
        """The keyword arguments of `responses.create` for `request` (public for tests)."""
        items: list[dict[str, Any]] = []
        for converted in self._converted.convert_all(request.messages):
            items.extend(converted)
        kwargs = dict(self._options, input=items)
        if request.system:
            kwargs["instructions"] = request.system
        if request.tools:
            kwargs["tools"] = [
                # strict mode would demand every property be required; our schemas have optional ones
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                    "strict": False,
                }
                for t in request.tools
            ]
        return kwargs

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        client = self._client()
        kwargs = self.build_request(request)
        stream = request.on_text is not None

        async def attempt(on_text: TextSink) -> ProviderResponse:
            if stream:
                return await self._stream(client, kwargs, on_text)
            return self._reply(await client.responses.create(**kwargs))

        return await self._with_retries(attempt, request.on_text)

    async def _stream(self, client: Any, kwargs: dict[str, Any], on_text: TextSink) -> ProviderResponse:
        final = None
        events = await client.responses.create(**kwargs, stream=True)
        async for event in events:
            kind = event.type
            if kind == "response.output_text.delta":
                await on_text(event.delta)
            elif kind in ("response.completed", "response.incomplete", "response.failed"):
                final = event.response
            elif kind == "error":
                raise self._stream_error(event.code, event.message)
        if final is None:  # the connection closed mid-reply: never keep half a message
            raise ProviderError(
                "the OpenAI stream ended before the reply was complete", provider=self.name, retryable=True
            )
        return self._reply(final)

    def _stream_error(self, code: str | None, message: str | None) -> ProviderError:
        fatal = code is not None and code.startswith(_FATAL_STREAM_ERRORS)
        return ProviderError(
            f"OpenAI API error{f' ({code})' if code else ''}: {message or 'the reply failed'}",
            provider=self.name,
            kind=code,
            retryable=not fatal,
        )

    def _reply(self, response: Any) -> ProviderResponse:
        if response.status == "failed":
            error = response.error
            raise self._stream_error(getattr(error, "code", None), getattr(error, "message", None))
        message, has_calls = _message(response.output or [])
        usage = response.usage
        counts = usage_counts(
            getattr(usage, "input_tokens", 0),
            getattr(usage, "output_tokens", 0),
            getattr(usage, "input_tokens_details", None),
            getattr(usage, "output_tokens_details", None),
        )
        if has_calls:
            stop = "tool_use"
        elif response.status == "incomplete":
            reason = getattr(response.incomplete_details, "reason", None)
            stop = "max_tokens" if reason == "max_output_tokens" else (reason or "incomplete")
        else:
            stop = "end_turn"
        return ProviderResponse(message, counts, stop)


def _message(output: list[Any]) -> tuple[Message, bool]:
    """Neutral blocks for the reply's items, and the items as a later request replays them."""
    blocks: list[Any] = []
    replay: list[dict[str, Any]] = []
    has_calls = False
    for item in output:
        if item.type == "reasoning":
            summary = [s.text for s in item.summary or []]
            if summary:
                blocks.append(ThinkingBlock("\n\n".join(summary), provider="openai"))
            if item.encrypted_content:  # without it a stateless request can not refer to the item
                replay.append(
                    {
                        "type": "reasoning",
                        "id": item.id,
                        "summary": [{"type": "summary_text", "text": text} for text in summary],
                        "encrypted_content": item.encrypted_content,
                    }
                )
        elif item.type == "message":
            text = "".join(
                getattr(part, "text", None) or getattr(part, "refusal", None) or "" for part in item.content
            )
            if text:
                blocks.append(TextBlock(text))
                replay.append({"role": "assistant", "content": text})
        elif item.type == "function_call":
            has_calls = True
            blocks.append(ToolCallBlock(item.call_id, item.name, tool_arguments_from_json(item.arguments)))
            replay.append(
                {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                }
            )
    return Message("assistant", tuple(blocks), provider_data={_ITEMS: replay}), has_calls


def _convert(message: Message) -> list[dict[str, Any]]:
    if message.role == "assistant":
        data = message.provider_data
        replay = data.get(_ITEMS) if isinstance(data, dict) else None
        return list(replay) if replay is not None else _assistant(message)
    return _user(message)


def _assistant(message: Message) -> list[dict[str, Any]]:
    """A reply from another route or provider: text and calls (foreign thinking can not be replayed)."""
    items: list[dict[str, Any]] = []
    if message.text:
        items.append({"role": "assistant", "content": message.text})
    for call in message.tool_calls:
        arguments = compact_json(call.arguments)
        items.append({"type": "function_call", "call_id": call.id, "name": call.name, "arguments": arguments})
    return items


def _user(message: Message) -> list[dict[str, Any]]:
    """Tool results become `function_call_output` items; other content one user message."""
    items: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            items.append(
                {"type": "function_call_output", "call_id": block.tool_call_id, "output": _output(block)}
            )
        elif isinstance(block, TextBlock) and block.text:
            parts.append({"type": "input_text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(_image(block))
    if len(parts) == 1 and parts[0]["type"] == "input_text":
        items.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        items.append({"role": "user", "content": parts})
    return items


def _output(block: ToolResultBlock) -> str | list[dict[str, Any]]:
    """A tool's output: its text, or input parts when it returned images."""
    if not any(isinstance(b, ImageBlock) for b in block.content):
        return block.text or "(no output)"
    return [
        _image(b) if isinstance(b, ImageBlock) else {"type": "input_text", "text": b.text}
        for b in block.content
    ]


def _image(block: ImageBlock) -> dict[str, Any]:
    return {
        "type": "input_image",
        "image_url": f"data:{block.media_type};base64,{block.data}",
        "detail": "auto",
    }
