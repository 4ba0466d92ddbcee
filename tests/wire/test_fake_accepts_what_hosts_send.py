"""The fake provider accepts the request shapes real hosts send (Claude Code on the beta
Messages API, Gemini CLI's replayed function calls) and still refuses what the real APIs
refuse: it is the ground truth of every wire test, so faithful rather than lenient."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest

from fake_provider import FakeProviderServer, ScriptedToolCall, Turn

TOOL = {"name": "run_echo", "description": "Echo.", "input_schema": {"type": "object", "properties": {}}}


@pytest.fixture
def fake():
    with FakeProviderServer() as server:
        yield server


BETAS = ["per-turn-control-2026-07-01", "advanced-tool-use-2025-11-20"]
"""Two of the betas Claude Code sends: system messages mid-conversation, and tool search."""


def ask(fake: FakeProviderServer, beta: bool, **body: Any) -> Any:
    request = {"model": "claude-opus-5-5", "max_tokens": 1000, **body}
    with anthropic.Anthropic(api_key=fake.api_key, base_url=fake.url, max_retries=0) as client:
        return (
            client.beta.messages.create(**request, betas=BETAS) if beta else client.messages.create(**request)
        )


def test_system_messages_mid_conversation_are_beta_only(fake):
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "Per-turn instructions."}]},
    ]
    fake.push(Turn(text="hello"))
    assert ask(fake, True, messages=messages).content[0].text == "hello"
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.1\.role: must be user or assistant"):
        ask(fake, False, messages=messages)
    with pytest.raises(anthropic.BadRequestError, match="'image' is not allowed in a system message"):
        bad = {"role": "system", "content": [{"type": "image", "source": {}}]}
        ask(fake, True, messages=[messages[0], bad])


def test_adaptive_thinking_needs_thinking_back_only_when_the_model_thought(fake):
    thinking = {"type": "adaptive", "display": "omitted"}
    user = {"role": "user", "content": "go"}
    fake.push(Turn(tool_calls=(ScriptedToolCall("run_echo", {}),)))  # chose not to think
    plain = ask(fake, True, messages=[user], tools=[TOOL], thinking=thinking)
    fake.push(Turn(thinking="Deep thought.", tool_calls=(ScriptedToolCall("run_echo", {}),)))
    thought = ask(fake, True, messages=[user], tools=[TOOL], thinking=thinking)
    assert thought.content[0].type == "thinking" and thought.content[0].thinking == ""  # display omitted
    for reply, accepted in ((plain, True), (thought, True)):
        blocks = [b.model_dump(exclude_none=True) for b in reply.content]
        result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": blocks[-1]["id"],
                                               "content": "ok"}]}  # fmt: skip
        fake.push(Turn(text="done"))
        answer = ask(fake, True, messages=[user, {"role": "assistant", "content": blocks}, result],
                     tools=[TOOL], thinking=thinking)  # fmt: skip
        assert answer.content[0].text == "done" and accepted
    stripped = [b.model_dump(exclude_none=True) for b in thought.content if b.type != "thinking"]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": stripped[0]["id"],
                                           "content": "ok"}]}  # fmt: skip
    with pytest.raises(anthropic.BadRequestError, match="must start with a thinking block"):
        ask(fake, True, messages=[user, {"role": "assistant", "content": stripped}, result],
            tools=[TOOL], thinking=thinking)  # fmt: skip


def test_tool_references_must_name_a_declared_tool(fake):
    fake.push(Turn(tool_calls=(ScriptedToolCall("run_echo", {}),)))
    call = ask(fake, True, messages=[{"role": "user", "content": "go"}], tools=[TOOL]).content[0]
    assistant = {"role": "assistant", "content": [call.model_dump(exclude_none=True)]}

    def result(tool_name: str) -> dict[str, Any]:
        reference = {"type": "tool_reference", "tool_name": tool_name}
        return {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": [reference]}],
        }

    fake.push(Turn(text="loaded"))
    messages = [{"role": "user", "content": "go"}, assistant]
    assert ask(fake, True, messages=[*messages, result("run_echo")], tools=[TOOL]).content[0].text == "loaded"
    with pytest.raises(anthropic.BadRequestError, match="tool_reference names 'nope', not among tools"):
        ask(fake, True, messages=[*messages, result("nope")], tools=[TOOL])
    with pytest.raises(anthropic.BadRequestError, match="'tool_reference' is not allowed in a tool_result"):
        ask(fake, False, messages=[*messages, result("run_echo")], tools=[TOOL])


def test_gemini_accepts_the_placeholder_signature_and_no_other_it_did_not_issue(fake):
    """Gemini CLI replays function calls with this placeholder in place of a real signature."""

    def replay(signature: str) -> Any:
        call = {"functionCall": {"name": "run_echo", "args": {}}, "thoughtSignature": signature}
        answer = {"functionResponse": {"name": "run_echo", "response": {"output": "ok"}}}
        contents = [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [call]},
            {"role": "user", "parts": [answer]},
        ]
        return httpx2.post(
            f"{fake.url}/v1beta/models/gemini-3.8-flash:generateContent",
            json={"contents": contents}, headers={"x-goog-api-key": fake.api_key}, timeout=30,
        )  # fmt: skip

    fake.push(Turn(text="fine"))
    accepted = replay("skip_thought_signature_validator")
    assert accepted.status_code == 200
    assert accepted.json()["candidates"][0]["content"]["parts"][0]["text"] == "fine"
    refused = replay("made-up-signature")
    assert refused.status_code == 400 and "Corrupted thought signature" in refused.text
