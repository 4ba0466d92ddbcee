"""The OpenAI Chat Completions API, as the fake server speaks it.

Requests are checked as the real API checks them (auth, roles, every tool call answered
by a `tool` message with its id before the conversation goes on). Responses are built
from `openai.types.chat` models; streams are `data:` chunks ending with `data: [DONE]`,
usage in a last chunk with no choices when `stream_options.include_usage` is set.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import (
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.chat.chat_completion_message_function_tool_call import (
    ChatCompletionMessageFunctionToolCall,
    Function,
)
from openai.types.completion_usage import CompletionTokensDetails, CompletionUsage, PromptTokensDetails

from .api import FakeApi
from .responses import ConversationView, JsonResponse, SseResponse
from .script import Fault, Turn

if TYPE_CHECKING:
    from .server import FakeProviderServer

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ROLES = {"system", "developer", "user", "assistant", "tool"}


def matches(path: str) -> bool:
    return path.rstrip("/").endswith("/chat/completions")


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JsonResponse(status, body, headers or {})


def validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must contain at least one message"
    pending: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in _ROLES:
            return f"Invalid value for 'messages[{index}].role': {role!r}"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    f"message with 'tool_calls' (messages[{index}] answers {call_id!r})"
                )
            pending.discard(call_id)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                f"each 'tool_call_id'. These tool_call_ids did not have response messages: {sorted(pending)}"
            )
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                if not call.get("id"):
                    return f"Missing required parameter: 'messages[{index}].tool_calls[].id'"
                json.loads(call["function"]["arguments"])  # must be a JSON string
                pending.add(call["id"])
            if message.get("content") is None and not message.get("tool_calls"):
                return f"Invalid value for 'messages[{index}].content': expected a string, got null"
        elif message.get("content") in (None, "", []):
            return f"Invalid 'messages[{index}].content': empty content"
    if pending:
        return f"tool_call_ids without response messages: {sorted(pending)}"
    for index, tool in enumerate(body.get("tools") or []):
        function = tool.get("function") or {}
        if tool.get("type") != "function" or not _TOOL_NAME.match(str(function.get("name", ""))):
            return f"Invalid 'tools[{index}].function.name': string does not match pattern '^[a-zA-Z0-9_-]+$'"
    return None


def view(body: dict[str, Any]) -> ConversationView:
    last = body["messages"][-1]
    tools = body.get("tools") or []
    first_tool = (tools[0]["function"]["name"], tools[0]["function"].get("parameters", {})) if tools else None
    is_result = last.get("role") == "tool"
    content = last.get("content")
    text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content or [])
    return ConversationView(is_result, text if is_result else "", first_tool, "" if is_result else text)


def build_completion(fake: FakeProviderServer, turn: Turn, model: str) -> ChatCompletion:
    calls = [
        ChatCompletionMessageFunctionToolCall(
            id="" if "no_tool_call_ids" in turn.quirks else call.id or fake.next_id("call_fake"),
            type="function",
            function=Function(
                name=call.name,
                arguments=""
                if "empty_arguments" in turn.quirks
                else json.dumps(call.arguments, separators=(",", ":")),
            ),
        )
        for call in turn.tool_calls
    ]
    message = ChatCompletionMessage(
        role="assistant", content=turn.text or None, refusal=None, annotations=[], tool_calls=calls or None
    )
    usage = turn.usage
    cached = usage.cache_read_tokens
    return ChatCompletion(
        id=fake.next_id("chatcmpl-fake"),
        object="chat.completion",
        created=int(time.time()),
        model=model,
        service_tier="default",
        system_fingerprint="fp_fake",
        choices=[
            Choice(
                index=0,
                finish_reason="tool_calls" if calls else (turn.stop_reason or "stop"),  # type: ignore[arg-type]
                logprobs=None,
                message=message,
            )
        ],
        usage=None
        if "no_usage" in turn.quirks
        else CompletionUsage(
            prompt_tokens=usage.input_tokens + cached,
            completion_tokens=usage.output_tokens,
            total_tokens=usage.input_tokens + cached + usage.output_tokens,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=cached, audio_tokens=0),
            completion_tokens_details=CompletionTokensDetails(
                reasoning_tokens=usage.reasoning_tokens,
                audio_tokens=0,
                accepted_prediction_tokens=0,
                rejected_prediction_tokens=0,
            ),
        ),
    )


def stream_response(completion: ChatCompletion, include_usage: bool) -> SseResponse:
    choice = completion.choices[0]
    message = choice.message

    def chunk(delta: ChoiceDelta, finish: str | None = None) -> str:
        event = ChatCompletionChunk(
            id=completion.id,
            object="chat.completion.chunk",
            created=completion.created,
            model=completion.model,
            system_fingerprint="fp_fake",
            choices=[ChunkChoice(index=0, delta=delta, logprobs=None, finish_reason=finish)],  # type: ignore[arg-type]
        )
        return f"data: {event.model_dump_json(exclude_unset=True)}\n\n"

    frames = [chunk(ChoiceDelta(role="assistant", content="" if message.content else None, refusal=None))]
    text = message.content or ""
    frames += [chunk(ChoiceDelta(content=text[i : i + 10])) for i in range(0, len(text), 10)]
    for index, call in enumerate(message.tool_calls or []):
        assert isinstance(call, ChatCompletionMessageFunctionToolCall)
        first = ChoiceDeltaToolCall(
            index=index,
            id=call.id or None,
            type="function",
            function=ChoiceDeltaToolCallFunction(name=call.function.name, arguments=""),
        )
        frames.append(chunk(ChoiceDelta(tool_calls=[first])))
        raw = call.function.arguments
        for i in range(0, len(raw), 6):
            piece = ChoiceDeltaToolCall(
                index=index, function=ChoiceDeltaToolCallFunction(arguments=raw[i : i + 6])
            )
            frames.append(chunk(ChoiceDelta(tool_calls=[piece])))
    frames.append(chunk(ChoiceDelta(), choice.finish_reason))
    if include_usage and completion.usage is not None:
        usage_chunk = ChatCompletionChunk(
            id=completion.id,
            object="chat.completion.chunk",
            created=completion.created,
            model=completion.model,
            choices=[],
            usage=completion.usage,
        )
        frames.append(f"data: {usage_chunk.model_dump_json(exclude_unset=True)}\n\n")
    frames.append("data: [DONE]\n\n")
    return SseResponse(frames)


class ChatCompletionsApi(FakeApi):
    matches = staticmethod(matches)
    view = staticmethod(view)
    error = staticmethod(_error)

    def refusal(
        self, fake: FakeProviderServer, path: str, headers: dict[str, str], body: Any
    ) -> JsonResponse | None:
        if headers.get("authorization") != f"Bearer {fake.api_key}":
            return _error(401, "invalid_request_error", "Incorrect API key provided.")
        problem = validate(body)
        return _error(400, "invalid_request_error", problem) if problem else None

    def reply(self, fake: FakeProviderServer, turn: Turn, path: str, body: dict[str, Any]) -> ChatCompletion:
        return build_completion(fake, turn, body["model"])

    def stream(self, reply: Any, body: dict[str, Any]) -> SseResponse:
        return stream_response(reply, bool((body.get("stream_options") or {}).get("include_usage")))

    def in_stream_error(self, fault: Fault) -> SseResponse | None:
        error = {"error": {"message": fault.message, "type": fault.error_type, "param": None, "code": None}}
        return SseResponse([f"data: {json.dumps(error)}\n\n"])

    def partial(self, fake: FakeProviderServer, path: str, body: dict[str, Any]) -> SseResponse:
        return stream_response(build_completion(fake, Turn(text="partial " * 20), body["model"]), True)


API = ChatCompletionsApi()
