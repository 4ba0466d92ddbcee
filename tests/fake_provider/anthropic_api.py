"""The Anthropic Messages API, as the fake server speaks it.

Requests are validated the way the real API validates them (auth, required fields,
tool_use / tool_result pairing, thinking blocks echoed unchanged with their
signatures, at most four cache breakpoints). Responses are built from
`anthropic.types` models, so whatever the SDK parses here it parses from the real API.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from anthropic.types import (
    CacheCreation,
    InputJSONDelta,
    Message,
    MessageDeltaUsage,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    SignatureDelta,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
    Usage,
)
from anthropic.types.raw_message_delta_event import Delta

from .api import FakeApi
from .responses import ConversationView, JsonResponse, SseResponse
from .script import Fault, Turn

if TYPE_CHECKING:
    from .server import FakeProviderServer

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_BLOCK_TYPES = {
    "user": {"text", "image", "document", "tool_result"},
    "assistant": {"text", "thinking", "redacted_thinking", "tool_use"},
    "system": {"text", "tool_addition", "tool_removal"},
}
"""Content blocks each role may hold. `system` messages (per-turn instructions, tools added
or removed mid-conversation) exist only with the beta that brings them (SYSTEM_MESSAGES_BETA),
which Claude Code sends; they take no part in the user / assistant turn order."""
SYSTEM_MESSAGES_BETA = "per-turn-control-2026-07-01"
TOOL_SEARCH_BETA = "advanced-tool-use-2025-11-20"
"""Deferred tools, loaded by `tool_reference` blocks in a tool result (Claude Code's ToolSearch)."""


def matches(path: str) -> bool:
    return path.startswith("/v1/messages") or path.endswith((":rawPredict", ":streamRawPredict"))


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    return JsonResponse(status, body, headers or {})


def _authorized(fake: FakeProviderServer, headers: dict[str, str], path: str) -> bool:
    if path.endswith(("rawPredict", "streamRawPredict")):
        return headers.get("authorization", "").startswith("Bearer ")
    bearer = headers.get("authorization", "").removeprefix("Bearer ")
    return fake.api_key in (bearer, headers.get("x-api-key"))


def validate(
    fake: FakeProviderServer, body: Any, path: str, betas: frozenset[str] = frozenset()
) -> str | None:
    """The first problem the real API would report for this request body, or None; `betas`
    are the request's anthropic-beta features."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    vertex = path.endswith(("rawPredict", "streamRawPredict"))
    if not vertex and not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    budget = (body.get("thinking") or {}).get("budget_tokens")
    if budget is not None and budget >= body["max_tokens"]:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return "messages: first message must use the user role"
    if SYSTEM_MESSAGES_BETA not in betas and any(m.get("role") == "system" for m in messages):
        index = next(i for i, m in enumerate(messages) if m.get("role") == "system")
        return f"messages.{index}.role: must be user or assistant"
    breakpoints = 0
    thinking_type = (body.get("thinking") or {}).get("type")
    pending_tool_ids: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in _BLOCK_TYPES:
            return f"messages.{index}.role: must be user or assistant"
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            return f"messages.{index}.content: must be a non-empty string or list"
        if role == "system":
            for j, block in enumerate(blocks):
                kind = block.get("type")
                if kind not in _BLOCK_TYPES["system"]:
                    return f"messages.{index}.content.{j}.type: '{kind}' is not allowed in a system message"
            continue
        if role == "user":
            results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if pending_tool_ids and pending_tool_ids != results:
                return (
                    f"messages.{index}: tool_use ids {sorted(pending_tool_ids)} were found without "
                    "tool_result blocks immediately after"
                )
            pending_tool_ids = set()
        for j, block in enumerate(blocks):
            kind = block.get("type")
            where = f"messages.{index}.content.{j}"
            if kind not in _BLOCK_TYPES[role]:
                return f"{where}.type: '{kind}' is not allowed in a {role} message"
            if "cache_control" in block:
                breakpoints += 1
            if kind == "text" and not block.get("text"):
                return f"{where}: text content blocks must be non-empty"
            if kind == "tool_use":
                pending_tool_ids.add(block.get("id"))
            if kind == "tool_result" and not str(block.get("tool_use_id", "")).startswith("toolu_"):
                return f"{where}.tool_use_id: unexpected id {block.get('tool_use_id')!r}"
            if kind == "tool_result":
                problem = _tool_result_problem(
                    block, where, TOOL_SEARCH_BETA in betas, body.get("tools") or []
                )
                if problem:
                    return problem
            if kind == "thinking":
                signature = block.get("signature")
                if fake.signatures.get(signature) != block.get("thinking"):
                    return f"{where}: Invalid `signature` in `thinking` block"
        if role == "assistant" and thinking_type and message is _last_assistant(messages):
            tool_ids = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
            # with "enabled" the model always thought; with "adaptive" only when it chose to,
            # and then that thinking must come back too
            thought = thinking_type == "enabled" or bool(tool_ids & fake.thought_tool_ids)
            if tool_ids and thought and blocks[0].get("type") not in ("thinking", "redacted_thinking"):
                return (
                    f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                    f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message "
                    "must start with a thinking block."
                )
    if pending_tool_ids:
        return "messages: the last assistant message has tool_use blocks without results"
    turns = [m for m in messages if m.get("role") != "system"]
    if turns[-1].get("role") != "user":
        return "messages: the final message must be a user message"
    system = body.get("system")
    if isinstance(system, list):
        breakpoints += sum(1 for b in system if "cache_control" in b)
    for index, tool in enumerate(body.get("tools") or []):
        if not _TOOL_NAME.match(str(tool.get("name", ""))):
            return f"tools.{index}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
        if "cache_control" in tool:
            breakpoints += 1
        if (tool.get("input_schema") or {}).get("type") != "object":
            return f"tools.{index}.input_schema.type: Input should be 'object'"
    if breakpoints > 4:
        return f"A maximum of 4 blocks with cache_control may be provided. Found {breakpoints}."
    return None


_RESULT_BLOCKS = {"text", "image", "document", "search_result"}


def _tool_result_problem(
    block: dict[str, Any], where: str, tool_search: bool, tools: list[Any]
) -> str | None:
    """What the API refuses inside a tool_result: unknown block types, and (beta tool search) a
    tool_reference to a tool the request does not declare."""
    inner = block.get("content")
    if not isinstance(inner, list):
        return None
    declared = {tool.get("name") for tool in tools}
    for k, part in enumerate(inner):
        kind = part.get("type")
        if kind == "tool_reference" and tool_search:
            if part.get("tool_name") not in declared:
                return f"{where}.content.{k}: tool_reference names '{part.get('tool_name')}', not among tools"
        elif kind not in _RESULT_BLOCKS:
            return f"{where}.content.{k}.type: '{kind}' is not allowed in a tool_result"
    return None


def _last_assistant(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The assistant message right before the final user turn (system messages aside)."""
    turns = [m for m in messages if m.get("role") != "system"]
    return turns[-2] if len(turns) >= 2 and turns[-2].get("role") == "assistant" else None


def view(body: dict[str, Any]) -> ConversationView:
    last = [m for m in body["messages"] if m.get("role") != "system"][-1]
    content = last.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    results = [b for b in blocks if b.get("type") == "tool_result"]
    result_text = ""
    if results:
        inner = results[-1].get("content")
        result_text = inner if isinstance(inner, str) else "".join(c.get("text", "") for c in inner or [])
    tools = body.get("tools") or []
    first_tool = (tools[0]["name"], tools[0].get("input_schema", {})) if tools else None
    user_text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    return ConversationView(bool(results), result_text, first_tool, user_text)


def build_message_from_text(text: str) -> Message:
    return Message(
        id="msg_fake",
        type="message",
        role="assistant",
        model="fake",
        content=[TextBlock(type="text", text=text)],
        stop_reason="end_turn",
        stop_sequence=None,
        usage=Usage(input_tokens=1, output_tokens=1),
    )


def build_message(
    fake: FakeProviderServer, turn: Turn, model: str, *, omit_thinking: bool = False
) -> Message:
    """The reply; `omit_thinking` (thinking.display = "omitted") sends thinking blocks with
    their signature but without their text, as the real API does."""
    content: list[Any] = []
    if turn.thinking is not None:
        shown = "" if omit_thinking else turn.thinking
        signature = "sig_" + hashlib.sha256(f"{fake.next_id('')}{turn.thinking}".encode()).hexdigest()[:48]
        fake.signatures[signature] = shown
        content.append(ThinkingBlock(type="thinking", thinking=shown, signature=signature))
    if turn.text:
        content.append(TextBlock(type="text", text=turn.text))
    for call in turn.tool_calls:
        call_id = call.id or fake.next_id("toolu_fake")
        if turn.thinking is not None:
            fake.thought_tool_ids.add(call_id)
        content.append(ToolUseBlock(type="tool_use", id=call_id, name=call.name, input=call.arguments))
    usage = turn.usage
    stop = turn.stop_reason or ("tool_use" if turn.tool_calls else "end_turn")
    return Message(
        id=fake.next_id("msg_fake"),
        type="message",
        role="assistant",
        model=model,
        content=content,
        stop_reason=stop,  # type: ignore[arg-type]
        stop_sequence=None,
        usage=Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_write_tokens,
            cache_read_input_tokens=usage.cache_read_tokens,
            cache_creation=CacheCreation(
                ephemeral_5m_input_tokens=usage.cache_write_tokens, ephemeral_1h_input_tokens=0
            ),
            service_tier="standard",
            inference_geo="not_available",
        ),
    )


def _frame(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_unset=True)


def stream_response(message: Message) -> SseResponse:
    """The SSE events the real API sends for `message`, in the recorded order."""
    start = message.model_copy(update={"content": [], "stop_reason": None})
    start.usage = message.usage.model_copy(update={"output_tokens": 1})
    frames = [_frame("message_start", _dump(RawMessageStartEvent(type="message_start", message=start)))]
    for index, block in enumerate(message.content):
        if isinstance(block, ThinkingBlock):
            empty: Any = ThinkingBlock(type="thinking", thinking="", signature="")
            deltas: list[Any] = [
                ThinkingDelta(type="thinking_delta", thinking=p) for p in _pieces(block.thinking)
            ]
            deltas.append(SignatureDelta(type="signature_delta", signature=block.signature))
        elif isinstance(block, TextBlock):
            empty = TextBlock(type="text", text="")
            deltas = [TextDelta(type="text_delta", text=p) for p in _pieces(block.text)]
        else:
            assert isinstance(block, ToolUseBlock)
            empty = ToolUseBlock(type="tool_use", id=block.id, name=block.name, input={})
            raw = json.dumps(block.input)
            deltas = [
                InputJSONDelta(type="input_json_delta", partial_json=raw[i : i + 8])
                for i in range(0, len(raw), 8)
            ]
        start_event = RawContentBlockStartEvent(type="content_block_start", index=index, content_block=empty)
        frames.append(_frame("content_block_start", _dump(start_event)))
        if index == 0:
            frames.append(_frame("ping", {"type": "ping"}))
        for delta in deltas:
            event = RawContentBlockDeltaEvent(type="content_block_delta", index=index, delta=delta)
            frames.append(_frame("content_block_delta", _dump(event)))
        frames.append(
            _frame(
                "content_block_stop", _dump(RawContentBlockStopEvent(type="content_block_stop", index=index))
            )
        )
    usage = message.usage
    delta_event = RawMessageDeltaEvent(
        type="message_delta",
        delta=Delta(stop_reason=message.stop_reason, stop_sequence=None),
        usage=MessageDeltaUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
        ),
    )
    frames.append(_frame("message_delta", _dump(delta_event)))
    frames.append(_frame("message_stop", _dump(RawMessageStopEvent(type="message_stop"))))
    return SseResponse(frames)


def _pieces(text: str) -> list[str]:
    return [text[i : i + 12] for i in range(0, len(text), 12)] or [""]


class AnthropicApi(FakeApi):
    matches = staticmethod(matches)
    view = staticmethod(view)
    error = staticmethod(_error)

    def refusal(
        self, fake: FakeProviderServer, path: str, headers: dict[str, str], body: Any
    ) -> JsonResponse | None:
        if not _authorized(fake, headers, path):
            return _error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in headers and not path.endswith("Predict"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        betas = frozenset(b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip())
        problem = validate(fake, body, path, betas)
        return _error(400, "invalid_request_error", problem) if problem else None

    def reply(self, fake: FakeProviderServer, turn: Turn, path: str, body: dict[str, Any]) -> Message:
        model = body.get("model") or path.rsplit("/models/", 1)[-1].split(":")[0]
        omitted = (body.get("thinking") or {}).get("display") == "omitted"
        return build_message(fake, turn, model, omit_thinking=omitted)

    def streams(self, path: str, body: dict[str, Any]) -> bool:
        return bool(body.get("stream")) or path.endswith(":streamRawPredict")

    def stream(self, reply: Any, body: dict[str, Any]) -> SseResponse:
        return stream_response(reply)

    def in_stream_error(self, fault: Fault) -> SseResponse | None:
        error = {"type": "error", "error": {"type": fault.error_type, "message": fault.message}}
        return SseResponse([_frame("error", error)])

    def partial(self, fake: FakeProviderServer, path: str, body: dict[str, Any]) -> SseResponse:
        return stream_response(build_message_from_text("partial " * 20))


API = AnthropicApi()
