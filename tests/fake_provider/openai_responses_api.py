"""The OpenAI Responses API (`POST /v1/responses`), as the fake server speaks it.

Requests are checked as the real API checks them: flat function tools, every
`function_call` answered by a `function_call_output` with its call id, and with
`store: false` no references to stored items: an item id is accepted only on a
reasoning item that carries the `encrypted_content` this server issued for it, unchanged,
followed by the item it reasoned about. Responses and stream events are built from
`openai.types.responses` models; streams are `event:`/`data:` SSE frames ending with
`response.completed` (or `response.incomplete`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import TYPE_CHECKING, Any

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response import IncompleteDetails
from openai.types.responses.response_reasoning_item import Summary
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from .api import FakeApi
from .responses import ConversationView, JsonResponse, SseResponse
from .script import Fault, Turn

if TYPE_CHECKING:
    from .server import FakeProviderServer

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ROLES = {"user", "assistant", "system", "developer"}
_PART_TYPES = {"input_text", "input_image", "input_file", "output_text", "refusal"}


def matches(path: str) -> bool:
    return path.rstrip("/").endswith("/responses")


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JsonResponse(status, body, headers or {})


def _summary_text(item: dict[str, Any]) -> str:
    return "\n\n".join(s.get("text", "") for s in item.get("summary") or [])


def validate(fake: FakeProviderServer | None, body: Any) -> tuple[int, str] | None:
    """None when the real API would accept `body`, else (status, message)."""
    if not isinstance(body, dict):
        return 400, "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return 400, "Missing required parameter: 'model'."
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        return 400, "Missing required parameter: 'input'."
    stateless = body.get("store") is False
    pending: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"input[{index}]"
        kind = item.get("type", "message")
        if stateless and "id" in item and kind != "reasoning":
            return 404, (
                f"Item with id '{item['id']}' not found. Items are not persisted when `store` is set to "
                "false. Try again with `store` set to true, or remove this item from your input."
            )
        if kind == "reasoning":
            if stateless and not item.get("encrypted_content"):
                return 404, (
                    f"Item with id '{item.get('id')}' not found. Items are not persisted when `store` is set "
                    "to false. Try again with `store` set to true, or remove this item from your input."
                )
            if fake is not None and fake.signatures.get(item.get("encrypted_content")) != _summary_text(item):
                return 400, f"The encrypted content for item {item.get('id')} could not be verified."
            following = items[index + 1] if index + 1 < len(items) else {}
            if following.get("type") != "function_call" and following.get("role") != "assistant":
                return 400, (
                    f"Item '{item.get('id')}' of type 'reasoning' was provided without its required "
                    "following item."
                )
        elif kind == "function_call":
            if not item.get("call_id") or not item.get("name"):
                return 400, f"Missing required parameter: '{where}.call_id'."
            try:
                json.loads(item.get("arguments", ""))
            except (TypeError, json.JSONDecodeError):
                return 400, f"Invalid '{where}.arguments': expected a JSON string."
            pending[item["call_id"]] = index
        elif kind == "function_call_output":
            if item.get("call_id") not in pending:
                return 400, f"No tool call found for function call output with call_id {item.get('call_id')}."
            pending.pop(item["call_id"])
            if not isinstance(item.get("output"), str | list):
                return 400, f"Invalid '{where}.output': expected a string or a list of content parts."
        elif kind == "message":
            if pending:
                return 400, f"No tool output found for function call {next(iter(pending))}."
            if item.get("role") not in _ROLES:
                return 400, f"Invalid value: '{item.get('role')}'. Supported values are: {sorted(_ROLES)}."
            content = item.get("content")
            if content in (None, "", []):
                return 400, f"Invalid '{where}.content': empty content."
            if isinstance(content, list) and any(p.get("type") not in _PART_TYPES for p in content):
                return 400, f"Invalid '{where}.content': unknown content part type."
        else:
            return 400, f"Invalid value: '{kind}'. Unknown input item type at {where}."
    if pending:
        return 400, f"No tool output found for function call {next(iter(pending))}."
    for index, tool in enumerate(body.get("tools") or []):
        if tool.get("type") != "function" or not _TOOL_NAME.match(str(tool.get("name", ""))):
            return 400, f"Missing required parameter: 'tools[{index}].name'."
    return None


def view(body: dict[str, Any]) -> ConversationView:
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    last = items[-1]
    tools = body.get("tools") or []
    first_tool = (tools[0]["name"], tools[0].get("parameters", {})) if tools else None
    if last.get("type") == "function_call_output":
        output = last["output"]
        text = output if isinstance(output, str) else "".join(p.get("text", "") for p in output)
        return ConversationView(True, text, first_tool, "")
    content = last.get("content")
    text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content or [])
    return ConversationView(False, "", first_tool, text)


def build_response(fake: FakeProviderServer, turn: Turn, body: dict[str, Any]) -> Response:
    output: list[Any] = []
    if turn.thinking is not None:
        encrypted = None
        if "reasoning.encrypted_content" in (body.get("include") or []):
            encrypted = "enc_" + hashlib.sha256(f"{fake.next_id('')}{turn.thinking}".encode()).hexdigest()
            fake.signatures[encrypted] = turn.thinking
        output.append(
            ResponseReasoningItem(
                id=fake.next_id("rs_fake"),
                type="reasoning",
                summary=[Summary(type="summary_text", text=turn.thinking)] if turn.thinking else [],
                encrypted_content=encrypted,
            )
        )
    if turn.text:
        text = ResponseOutputText(type="output_text", text=turn.text, annotations=[])
        output.append(
            ResponseOutputMessage(
                id=fake.next_id("msg_fake"),
                type="message",
                role="assistant",
                status="completed",
                content=[text],
            )
        )
    for call in turn.tool_calls:
        output.append(
            ResponseFunctionToolCall(
                id=fake.next_id("fc_fake"),
                type="function_call",
                call_id=call.id or fake.next_id("call_fake"),
                name=call.name,
                arguments=json.dumps(call.arguments, separators=(",", ":")),
                status="completed",
            )
        )
    usage = turn.usage
    cached, written = usage.cache_read_tokens, usage.cache_write_tokens
    prompt = usage.input_tokens + cached + written
    incomplete = turn.stop_reason == "max_tokens"
    return Response(
        id=fake.next_id("resp_fake"),
        object="response",
        created_at=time.time(),
        model=body["model"],
        output=output,
        status="incomplete" if incomplete else "completed",
        incomplete_details=IncompleteDetails(reason="max_output_tokens") if incomplete else None,
        instructions=body.get("instructions"),
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=body.get("tools") or [],
        store=body.get("store", True),
        usage=ResponseUsage(
            input_tokens=prompt,
            input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=written),
            output_tokens=usage.output_tokens,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=usage.reasoning_tokens),
            total_tokens=prompt + usage.output_tokens,
        ),
    )


def stream_response(response: Response) -> SseResponse:
    """The events the real API sends for `response`, in its order."""
    events: list[Any] = []
    start = response.model_copy(update={"status": "in_progress", "output": [], "usage": None})
    events.append(ResponseCreatedEvent(type="response.created", response=start, sequence_number=0))
    events.append(ResponseInProgressEvent(type="response.in_progress", response=start, sequence_number=0))
    for index, item in enumerate(response.output):
        events.extend(_item_events(index, item))
    if response.status == "incomplete":
        events.append(
            ResponseIncompleteEvent(type="response.incomplete", response=response, sequence_number=0)
        )
    else:
        events.append(ResponseCompletedEvent(type="response.completed", response=response, sequence_number=0))
    frames = []
    for number, event in enumerate(events):
        event.sequence_number = number
        frames.append(f"event: {event.type}\ndata: {event.model_dump_json(exclude_none=True)}\n\n")
    return SseResponse(frames)


def _item_events(index: int, item: Any) -> list[Any]:
    if isinstance(item, ResponseOutputMessage):
        empty = item.model_copy(update={"status": "in_progress", "content": []})
        text = item.content[0].text  # type: ignore[union-attr]
        blank = ResponseOutputText(type="output_text", text="", annotations=[])
        common = {"item_id": item.id, "output_index": index, "content_index": 0, "sequence_number": 0}
        return [
            ResponseOutputItemAddedEvent(
                type="response.output_item.added", output_index=index, item=empty, sequence_number=0
            ),
            ResponseContentPartAddedEvent(type="response.content_part.added", part=blank, **common),
            *(
                ResponseTextDeltaEvent(
                    type="response.output_text.delta", delta=text[i : i + 10], logprobs=[], **common
                )
                for i in range(0, len(text), 10)
            ),
            ResponseTextDoneEvent(type="response.output_text.done", text=text, logprobs=[], **common),
            ResponseContentPartDoneEvent(type="response.content_part.done", part=item.content[0], **common),
            ResponseOutputItemDoneEvent(
                type="response.output_item.done", output_index=index, item=item, sequence_number=0
            ),
        ]
    if isinstance(item, ResponseFunctionToolCall):
        empty_call = item.model_copy(update={"arguments": "", "status": "in_progress"})
        raw = item.arguments
        ids = {"item_id": item.id or "", "output_index": index, "sequence_number": 0}
        return [
            ResponseOutputItemAddedEvent(
                type="response.output_item.added", output_index=index, item=empty_call, sequence_number=0
            ),
            *(
                ResponseFunctionCallArgumentsDeltaEvent(
                    type="response.function_call_arguments.delta", delta=raw[i : i + 6], **ids
                )
                for i in range(0, len(raw), 6)
            ),
            ResponseFunctionCallArgumentsDoneEvent(
                type="response.function_call_arguments.done", arguments=raw, name=item.name, **ids
            ),
            ResponseOutputItemDoneEvent(
                type="response.output_item.done", output_index=index, item=item, sequence_number=0
            ),
        ]
    assert isinstance(item, ResponseReasoningItem)
    text = _summary_text(item.model_dump())
    return [
        ResponseOutputItemAddedEvent(
            type="response.output_item.added",
            output_index=index,
            item=item.model_copy(update={"summary": [], "encrypted_content": None}),
            sequence_number=0,
        ),
        *(
            ResponseReasoningSummaryTextDeltaEvent(
                type="response.reasoning_summary_text.delta",
                item_id=item.id,
                output_index=index,
                summary_index=0,
                delta=text[i : i + 12],
                sequence_number=0,
            )
            for i in range(0, len(text), 12)
        ),
        ResponseOutputItemDoneEvent(
            type="response.output_item.done", output_index=index, item=item, sequence_number=0
        ),
    ]


class ResponsesApi(FakeApi):
    matches = staticmethod(matches)
    view = staticmethod(view)
    error = staticmethod(_error)

    def refusal(
        self, fake: FakeProviderServer, path: str, headers: dict[str, str], body: Any
    ) -> JsonResponse | None:
        if headers.get("authorization") != f"Bearer {fake.api_key}":
            return _error(401, "invalid_request_error", "Incorrect API key provided.")
        problem = validate(fake, body)
        return _error(problem[0], "invalid_request_error", problem[1]) if problem else None

    def reply(self, fake: FakeProviderServer, turn: Turn, path: str, body: dict[str, Any]) -> Response:
        return build_response(fake, turn, body)

    def stream(self, reply: Any, body: dict[str, Any]) -> SseResponse:
        return stream_response(reply)

    def dump(self, reply: Any) -> Any:
        return reply.model_dump(mode="json", exclude_none=True)

    def in_stream_error(self, fault: Fault) -> SseResponse | None:
        error = {"type": "error", "code": fault.error_type, "message": fault.message, "param": None}
        return SseResponse([f"event: error\ndata: {json.dumps(error | {'sequence_number': 0})}\n\n"])


API = ResponsesApi()
