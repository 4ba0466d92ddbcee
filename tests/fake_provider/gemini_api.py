"""The Gemini API (generateContent / streamGenerateContent?alt=sse), as the fake server speaks it.

Requests are checked as the real API checks them (api key, roles, every functionCall
answered by a functionResponse of the same name, thought signatures sent back unchanged
on the parts they came with). Bodies are `google.genai.types.GenerateContentResponse`
dumped with camelCase aliases, as the SDK parses them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

from google.genai import types

from .api import FakeApi
from .responses import ConversationView, JsonResponse, SseResponse
from .script import Fault, Turn

if TYPE_CHECKING:
    from .server import FakeProviderServer


def matches(path: str) -> bool:
    head = path.split("?")[0]
    return head.endswith((":generateContent", ":streamGenerateContent"))


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(
        status, {"error": {"code": status, "message": message, "status": kind}}, headers or {}
    )


def _get(part: dict[str, Any], snake: str, camel: str) -> Any:
    return part.get(camel, part.get(snake))


SKIP_SIGNATURE = "skip_thought_signature_validator"
"""The placeholder the real API accepts in place of a thought signature it did not issue (for
histories from elsewhere): Gemini CLI sends it on function calls it replays."""


def validate(fake: FakeProviderServer, body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    pending: list[str] = []
    for index, content in enumerate(contents):
        role = content.get("role")
        if role not in ("user", "model"):
            return f"* GenerateContentRequest.contents[{index}].role: must be user or model"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty."
        answered = [_get(p, "function_response", "functionResponse")["name"] for p in parts
                    if _get(p, "function_response", "functionResponse")]  # fmt: skip
        if pending and sorted(answered) != sorted(pending):
            return (
                "Please ensure that the number of function response parts is equal to the number of "
                f"function call parts of the function call turn (calls {pending}, responses {answered})."
            )
        pending = []
        for j, part in enumerate(parts):
            call = _get(part, "function_call", "functionCall")
            if call:
                pending.append(call["name"])
                if role != "model":
                    return f"* contents[{index}].parts[{j}]: a function call must come from the model"
            signature = _get(part, "thought_signature", "thoughtSignature")
            if signature is not None and signature not in fake.signatures and signature != SKIP_SIGNATURE:
                return f"* contents[{index}].parts[{j}].thought_signature: Corrupted thought signature."
    if pending:
        return "function call turn without function responses"
    return None


def view(body: dict[str, Any]) -> ConversationView:
    parts = body["contents"][-1]["parts"]
    results = [_get(p, "function_response", "functionResponse") for p in parts]
    results = [r for r in results if r]
    declarations = [
        d
        for tool in body.get("tools") or []
        for d in _get(tool, "function_declarations", "functionDeclarations") or []
    ]
    first_tool = None
    if declarations:
        schema = _get(declarations[0], "parameters_json_schema", "parametersJsonSchema") or {}
        first_tool = (declarations[0]["name"], schema)
    result_text = json.dumps(results[-1].get("response")) if results else ""
    user_text = "".join(p.get("text", "") for p in parts)
    return ConversationView(bool(results), result_text, first_tool, user_text)


def _dump(response: types.GenerateContentResponse) -> dict[str, Any]:
    return response.model_dump(mode="json", exclude_none=True, by_alias=True)


def _signature(fake: FakeProviderServer, seed: str) -> bytes:
    signature = hashlib.sha256(f"{fake.next_id('')}{seed}".encode()).digest()
    fake.signatures[base64.b64encode(signature).decode()] = seed
    fake.signatures[base64.urlsafe_b64encode(signature).decode()] = seed
    return signature


def build_response(fake: FakeProviderServer, turn: Turn, model: str) -> types.GenerateContentResponse:
    parts: list[types.Part] = []
    if turn.thinking is not None:
        parts.append(types.Part(text=turn.thinking, thought=True))
    if turn.text:
        parts.append(types.Part(text=turn.text))
    for index, call in enumerate(turn.tool_calls):
        part = types.Part(function_call=types.FunctionCall(name=call.name, args=call.arguments, id=call.id))
        if index == 0 and turn.thinking is not None:  # thinking models sign the first call
            part.thought_signature = _signature(fake, call.name)
        parts.append(part)
    usage = turn.usage
    return types.GenerateContentResponse(
        candidates=[
            types.Candidate(
                content=types.Content(role="model", parts=parts),
                finish_reason=types.FinishReason.STOP,
                index=0,
            )
        ],
        model_version=model,
        response_id=fake.next_id("resp"),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=usage.input_tokens + usage.cache_read_tokens,
            cached_content_token_count=usage.cache_read_tokens or None,
            candidates_token_count=usage.output_tokens,
            thoughts_token_count=usage.reasoning_tokens or None,
            total_token_count=usage.input_tokens
            + usage.cache_read_tokens
            + usage.output_tokens
            + usage.reasoning_tokens,
        ),
    )


def stream_response(response: types.GenerateContentResponse) -> SseResponse:
    """Text in pieces, each call whole; finish reason and usage on the last chunk."""
    candidate = response.candidates[0]  # type: ignore[index]
    pieces: list[types.Part] = []
    for part in candidate.content.parts or []:  # type: ignore[union-attr]
        if part.text and not part.thought_signature:
            pieces += [
                types.Part(text=part.text[i : i + 10], thought=part.thought)
                for i in range(0, len(part.text), 10)
            ]
        else:
            pieces.append(part)
    frames = []
    for index, part in enumerate(pieces):
        last = index == len(pieces) - 1
        chunk = types.GenerateContentResponse(
            candidates=[
                types.Candidate(
                    content=types.Content(role="model", parts=[part]),
                    finish_reason=candidate.finish_reason if last else None,
                    index=0,
                )
            ],
            model_version=response.model_version,
            response_id=response.response_id,
            usage_metadata=response.usage_metadata if last else None,
        )
        frames.append(f"data: {json.dumps(_dump(chunk))}\r\n\r\n")  # as recorded: CRLF
    return SseResponse(frames)


_STATUS_NAMES = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 400: "INVALID_ARGUMENT"}


class GeminiApi(FakeApi):
    matches = staticmethod(matches)
    view = staticmethod(view)
    error = staticmethod(_error)

    def refusal(
        self, fake: FakeProviderServer, path: str, headers: dict[str, str], body: Any
    ) -> JsonResponse | None:
        bearer = headers.get("authorization", "").startswith("Bearer ")
        if headers.get("x-goog-api-key") != fake.api_key and not bearer:
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        problem = validate(fake, body)
        return _error(400, "INVALID_ARGUMENT", problem) if problem else None

    def reply(
        self, fake: FakeProviderServer, turn: Turn, path: str, body: dict[str, Any]
    ) -> types.GenerateContentResponse:
        return build_response(fake, turn, path.split("/models/", 1)[-1].split(":")[0])

    def streams(self, path: str, body: dict[str, Any]) -> bool:
        return ":streamGenerateContent" in path

    def stream(self, reply: Any, body: dict[str, Any]) -> SseResponse:
        return stream_response(reply)

    def dump(self, reply: Any) -> Any:
        return _dump(reply)

    def fault_kind(self, fault: Fault) -> str:
        return _STATUS_NAMES.get(fault.status, fault.error_type)


API = GeminiApi()
