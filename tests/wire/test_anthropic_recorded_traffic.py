"""The fake Anthropic server and our requests match recorded real API traffic.

The recordings (tests/wire/recordings/anthropic, from pydantic-ai's test suite) are
the ground truth: the fake must answer in the same shapes, accept the requests the
real API accepted, and our provider must build requests of the same shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from anthropic.types import Message as SDKMessage

from fake_provider import FakeProviderServer, ScriptedToolCall, Turn, anthropic_api
from llmproc import LLMProgram
from llmproc.kernel import Kernel
from llmproc.messages import Message, TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock
from llmproc.providers.anthropic import AnthropicProvider
from llmproc.providers.base import ProviderRequest
from llmproc.tools.base import ToolSpec

SAMPLES = Path(__file__).resolve().parent / "recordings" / "anthropic"


def interactions(name: str) -> list[dict[str, Any]]:
    path = SAMPLES / name
    if not path.exists():
        pytest.fail(f"recorded traffic {path} is missing; it belongs in tests/wire/recordings/")
    return yaml.safe_load(path.read_text())["interactions"]


def shape(value: Any) -> Any:
    """Keys and types, not values: dicts by key, lists by their first item."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.strip().splitlines() if ": " in line)
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture
def fake() -> FakeProviderServer:
    return FakeProviderServer()  # used for its id and signature bookkeeping; not started


def test_recorded_responses_parse_with_the_sdk_types_the_fake_uses():
    for interaction in interactions("tool_with_thinking.yaml") + interactions("cache_real_api.yaml"):
        SDKMessage.model_validate(interaction["response"]["parsed_body"])


def test_fake_json_response_has_the_recorded_shape(fake):
    recorded = interactions("tool_with_thinking.yaml")[0]["response"]["parsed_body"]
    turn = Turn(
        thinking="Let me think.", text="Checking.", tool_calls=(ScriptedToolCall("get_user_country"),)
    )
    ours = anthropic_api.build_message(fake, turn, "claude-sonnet-4-0").model_dump(
        mode="json", exclude_unset=True
    )
    assert shape(ours) == shape(recorded)
    recorded_blocks = {b["type"]: shape(b) for b in recorded["content"]}
    our_blocks = {b["type"]: shape(b) for b in ours["content"]}
    assert our_blocks == recorded_blocks


def test_fake_stream_sends_the_recorded_event_sequence(fake):
    recorded = sse_events(interactions("model_thinking_part_stream.yaml")[0]["response"]["body"]["string"])
    message = anthropic_api.build_message(fake, Turn(thinking="Think.", text="Answer."), "claude-sonnet-4-0")
    ours = sse_events("".join(anthropic_api.stream_response(message).frames))

    def collapsed(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
        names: list[str] = []
        for name, data in events:
            label = (
                f"{name}:{data.get('delta', {}).get('type', '')}" if name == "content_block_delta" else name
            )
            if not names or names[-1] != label:
                names.append(label)
        return names

    assert collapsed(ours) == collapsed(recorded)

    def first_of_each(events: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        return {name: data for name, data in reversed(events)}

    ours_first, recorded_first = first_of_each(ours), first_of_each(recorded)
    for name in ("message_start", "message_delta", "content_block_stop", "message_stop"):
        assert shape(ours_first[name]) == shape(recorded_first[name]), name


def test_fake_accepts_the_requests_the_real_api_accepted(fake):
    for interaction in interactions("tool_with_thinking.yaml"):
        body = interaction["request"]["parsed_body"]
        for message in body["messages"]:
            for block in message["content"]:
                if block.get("type") == "thinking":
                    fake.signatures[block["signature"]] = block["thinking"]
                if block.get("type") == "tool_result":  # the fake only issues toolu_ ids
                    assert block["tool_use_id"].startswith("toolu_")
        assert anthropic_api.validate(fake, body, "/v1/messages") is None


def test_fake_rejects_a_changed_thinking_signature(fake):
    body = interactions("tool_with_thinking.yaml")[1]["request"]["parsed_body"]
    assert "Invalid `signature`" in anthropic_api.validate(fake, body, "/v1/messages")


def test_our_request_for_the_recorded_conversation_has_the_recorded_shape():
    recorded = interactions("tool_with_thinking.yaml")[1]["request"]["parsed_body"]
    thinking, text, tool_use = recorded["messages"][1]["content"]
    program = LLMProgram(
        model_name="claude-sonnet-4-0",
        provider="anthropic",
        parameters={"max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 3000}},
        disable_automatic_caching=True,
    )
    provider = AnthropicProvider(program.provider_settings, Kernel())
    history = [
        Message.user(recorded["messages"][0]["content"][0]["text"]),
        Message(
            "assistant",
            (
                ThinkingBlock(thinking["thinking"], signature=thinking["signature"], provider="anthropic"),
                TextBlock(text["text"]),
                ToolCallBlock(tool_use["id"], tool_use["name"], tool_use["input"]),
            ),
        ),
        Message(
            "user", (ToolResultBlock(tool_use["id"], (TextBlock("Mexico"),), False, "get_user_country"),)
        ),
    ]
    tools = [ToolSpec("get_user_country", "", recorded["tools"][0]["input_schema"])]
    ours = provider.build_request(ProviderRequest("", history, tools))
    # A lone text block may be sent as a plain string: the API treats both forms alike.
    assert ours["messages"][0]["content"] == recorded["messages"][0]["content"][0]["text"]
    assert ours["messages"][1:] == recorded["messages"][1:]  # echoed thinking turn and tool result: identical
    for key in ("model", "max_tokens", "thinking", "tools"):
        assert ours[key] == recorded[key], key
