"""OpenAI through the official `openai` SDK: Chat Completions, and the route choice.

Chat Completions serves OpenAI's non-reasoning models and every compatible server (vLLM,
Ollama, LM Studio, OpenRouter...) reached with `[model] base_url`; those often need no
key, so a placeholder is sent when none is set. Their quirks are tolerated: tool calls
without ids get one, empty or invalid argument strings become `{}` or a raw value the
tool reports, and a missing usage block counts as zero. OpenAI's reasoning models go
to the Responses API (openai_responses.py) unless `[model] api` says otherwise.
Converted messages are cached by message id, as for every provider.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from ..config import ModelConfig
from ..errors import ProviderError
from ..messages import (
    ImageBlock,
    Message,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
    tool_arguments_from_json,
)
from ..result import Usage
from .base import (
    ClientPool,
    ConversionCache,
    ProviderEntry,
    ProviderRequest,
    ProviderResponse,
    ProviderSettings,
)
from .openai_common import REASONING_MODELS, OpenAIProvider, compact_json, usage_counts
from .openai_responses import OpenAIResponsesProvider
from .retry import TextSink

CHAT_PARAMETERS = frozenset(
    {"max_tokens", "temperature", "top_p", "stop", "frequency_penalty", "presence_penalty", "seed"}
    | {"reasoning_effort", "extra_headers", "extra_body"}
)
RESPONSES_PARAMETERS = frozenset(
    {"max_tokens", "temperature", "top_p", "reasoning_effort", "reasoning_summary"}
    | {"extra_headers", "extra_body"}
)
PARAMETERS = CHAT_PARAMETERS | RESPONSES_PARAMETERS
"""OpenAI model families that reason, for which the Responses API is the better route."""


def uses_responses_api(model: ModelConfig) -> bool:
    """`[model] api`, or for "auto": OpenAI's own API serving a reasoning model."""
    if model.api != "auto":
        return model.api == "responses"
    return model.base_url is None and REASONING_MODELS.match(model.name) is not None


WARM_UP = ("openai", "openai.resources.chat", "openai.resources.responses", "httpcore2")


def parameters_for(model: ModelConfig) -> tuple[frozenset[str], str]:
    if uses_responses_api(model):
        return RESPONSES_PARAMETERS, "provider 'openai' on the Responses API"
    return CHAT_PARAMETERS, "provider 'openai' on Chat Completions (see [model] api)"


_STOP_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
    "function_call": "tool_use",
}
_missing_ids = itertools.count(1)


def create(settings: ProviderSettings, clients: ClientPool) -> OpenAIChatProvider | OpenAIResponsesProvider:
    if uses_responses_api(settings.model):
        return OpenAIResponsesProvider(settings, clients)
    return OpenAIChatProvider(settings, clients)


ENTRY = ProviderEntry(create=create, parameters=parameters_for, warm_up=WARM_UP)


class OpenAIChatProvider(OpenAIProvider):
    def __init__(self, settings: ProviderSettings, clients: ClientPool) -> None:
        super().__init__(settings, clients)
        self._converted = ConversionCache(_convert)
        self._options = self._request_options(settings)

    # -- request -------------------------------------------------------------------------------

    def _request_options(self, settings: ProviderSettings) -> dict[str, Any]:
        params = settings.parameters
        options: dict[str, Any] = {"model": self._model.name}
        if params.max_tokens is not None:
            # OpenAI's own API renamed it; compatible servers mostly know only the old name.
            options["max_tokens" if self._base_url else "max_completion_tokens"] = params.max_tokens
        for name in (
            "temperature",
            "top_p",
            "frequency_penalty",
            "presence_penalty",
            "seed",
            "reasoning_effort",
        ):
            value = getattr(params, name)
            if value is not None:
                options[name] = value
        if params.stop:
            options["stop"] = params.stop
        if params.extra_body:
            options["extra_body"] = dict(params.extra_body)
        if params.extra_headers:
            options["extra_headers"] = params.extra_headers
        return options

    def build_request(self, request: ProviderRequest) -> dict[str, Any]:
        """The keyword arguments of `chat.completions.create` for `request` (public for tests)."""
        messages: list[dict[str, Any]] = (
            [{"role": "system", "content": request.system}] if request.system else []
        )
        for converted in self._converted.convert_all(request.messages):
            messages.extend(converted)
        kwargs = dict(self._options, messages=messages)
        if request.tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
        return kwargs

    # -- call ----------------------------------------------------------------------------------

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        client = self._client()
        kwargs = self.build_request(request)
        stream = request.on_text is not None

        async def attempt(on_text: TextSink) -> ProviderResponse:
            if stream:
                return await self._stream(client, kwargs, on_text)
            reply = await client.chat.completions.create(**kwargs)
            if not reply.choices:
                raise ProviderError(
                    "OpenAI API sent a reply with no choices", provider=self.name, retryable=True
                )
            choice = reply.choices[0]
            calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
            return _response(choice.message.content or "", calls, choice.finish_reason, reply.usage)

        return await self._with_retries(attempt, request.on_text)

    async def _stream(self, client: Any, kwargs: dict[str, Any], on_text: TextSink) -> ProviderResponse:
        text: list[str] = []
        calls: dict[int, list[Any]] = {}  # index -> [id, name, argument fragments]
        finish_reason, usage = None, None
        events = await client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in events:
            usage = chunk.usage or usage
            for choice in chunk.choices:  # the final usage chunk has no choices
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                    await on_text(delta.content)
                for fragment in delta.tool_calls or []:
                    call = calls.setdefault(fragment.index, [None, "", []])
                    call[0] = call[0] or fragment.id
                    if fragment.function is not None:
                        call[1] = call[1] or (fragment.function.name or "")
                        call[2].append(fragment.function.arguments or "")
                finish_reason = choice.finish_reason or finish_reason
        if finish_reason is None:  # the connection closed mid-reply: never keep half a message
            raise ProviderError(
                "the OpenAI stream ended before the reply was complete", provider=self.name, retryable=True
            )
        ordered = [(c[0], c[1], "".join(c[2])) for _, c in sorted(calls.items())]
        return _response("".join(text), ordered, finish_reason, usage)


def _convert(message: Message) -> list[dict[str, Any]]:
    return _assistant(message) if message.role == "assistant" else _user(message)


def _user(message: Message) -> list[dict[str, Any]]:
    """Tool results become `tool` messages; any other content follows as one user message.

    `tool` messages take only text, so images a tool returned follow in that user message,
    each introduced by the call it came from.
    """
    converted: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            images = [b for b in block.content if isinstance(b, ImageBlock)]
            text = block.text or ("(images follow)" if images else "(no output)")
            converted.append({"role": "tool", "tool_call_id": block.tool_call_id, "content": text})
            if images:
                parts.append({"type": "text", "text": f"Images returned by tool call {block.tool_call_id}:"})
                parts += [_image_part(b) for b in images]
        elif isinstance(block, TextBlock) and block.text:
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
    if len(parts) == 1 and parts[0]["type"] == "text":
        converted.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        converted.append({"role": "user", "content": parts})
    return converted


def _image_part(block: ImageBlock) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"data:{block.media_type};base64,{block.data}"}}


def _assistant(message: Message) -> list[dict[str, Any]]:
    # no `content: null` beside tool calls: the SDK walks every key of every message per request
    converted: dict[str, Any] = {"role": "assistant"}
    if message.text or not message.tool_calls:
        converted["content"] = message.text
    calls = message.tool_calls
    if calls:
        converted["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": compact_json(c.arguments)},
            }
            for c in calls
        ]
    return [converted]


def _response(
    text: str, calls: Sequence[tuple[str | None, str, str | None]], finish_reason: str | None, usage: Any
) -> ProviderResponse:
    blocks: list[Any] = [TextBlock(text)] if text else []
    for call_id, name, arguments in calls:
        blocks.append(
            ToolCallBlock(
                call_id or f"call_llmproc_{next(_missing_ids)}", name, tool_arguments_from_json(arguments)
            )
        )
    stop = "tool_use" if calls else _STOP_REASONS.get(finish_reason or "stop", finish_reason or "end_turn")
    return ProviderResponse(Message("assistant", tuple(blocks)), _usage(usage), stop)


def _usage(usage: Any) -> Usage:
    if usage is None:  # some compatible servers send none
        return Usage()
    return usage_counts(
        usage.prompt_tokens,
        usage.completion_tokens,
        getattr(usage, "prompt_tokens_details", None),
        getattr(usage, "completion_tokens_details", None),
    )
