"""Gemini-specific behaviour over the wire: request shape, thought signatures, recorded traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fake_provider import FakeProviderServer, ScriptedToolCall, Turn, TurnUsage, gemini_api
from llmproc import LLMProcess, LLMProgram

SAMPLES = Path(__file__).resolve().parent / "recordings" / "gemini"
PROGRAM = (
    '[model]\nname = "gemini-2.5-flash"\nprovider = "gemini"\nmax_retries = 0\n'
    '[prompt]\nsystem_prompt = "Be brief."\n'
)


def get_country() -> str:
    """The user's country."""
    return "Mexico"


@pytest.fixture
def gemini_env(fake, monkeypatch) -> FakeProviderServer:
    monkeypatch.setenv("GEMINI_API_KEY", fake.api_key)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    return fake


def start(write_program, extra: str = "") -> LLMProcess:
    program = LLMProgram.from_toml(write_program(PROGRAM + extra))
    program.add_tool(get_country)
    return LLMProcess(program)


async def test_request_shape(gemini_env, write_program):
    gemini_env.push(Turn(text="ok"))
    await start(
        write_program, "[parameters]\nmax_tokens = 64\ntemperature = 0.3\nthinking_budget = 512\n"
    ).run("Hi")
    request = gemini_env.requests[0]
    assert request.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert request.headers["x-goog-api-key"] == gemini_env.api_key
    body = request.body
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_country"
    assert declaration["parameters_json_schema"]["type"] == "object"  # snake_case on the wire, as recorded
    config = body["generationConfig"]
    assert config["maxOutputTokens"] == 64 and config["temperature"] == 0.3
    thinking = config["thinkingConfig"]
    assert thinking.get("thinkingBudget", thinking.get("thinking_budget")) == 512


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_thought_signatures_are_replayed_unchanged(gemini_env, write_program, stream):
    gemini_env.push(
        Turn(thinking="The user wants their country.", tool_calls=(ScriptedToolCall("get_country"),)),
        Turn(text="Mexico City.", usage=TurnUsage(reasoning_tokens=9)),
    )
    process = start(write_program)
    if stream:
        process.add_callback(lambda e: None)
    result = await process.run("Capital of my country?")
    assert result.text == "Mexico City."  # the fake refuses a changed or missing-from-record signature
    replayed = gemini_env.bodies()[1]["contents"][1]["parts"]
    signed = [p for p in replayed if "thoughtSignature" in p]
    assert len(signed) == 1 and signed[0]["functionCall"]["name"] == "get_country"
    response = gemini_env.bodies()[1]["contents"][2]["parts"][0]["functionResponse"]
    assert response["name"] == "get_country" and response["response"] == {"output": "Mexico"}
    assert response["id"] == signed[0]["functionCall"]["id"]
    assert process.messages[1].content[0].type == "thinking"


async def test_thinking_tokens_are_billed_as_output(gemini_env, write_program):
    gemini_env.push(Turn(text="ok", usage=TurnUsage(input_tokens=100, output_tokens=10, reasoning_tokens=30)))
    result = await start(write_program).run("hi")
    assert result.usage.output_tokens == 40 and result.usage.reasoning_tokens == 30
    assert result.cost_usd == pytest.approx((100 * 0.30 + 40 * 2.50) / 1_000_000)


def recorded(name: str) -> list[dict]:
    path = SAMPLES / name
    if not path.exists():
        pytest.fail(f"recorded traffic {path} is missing; it belongs in tests/wire/recordings/")
    return yaml.safe_load(path.read_text())["interactions"]


def test_fake_accepts_the_recorded_requests():
    fake = FakeProviderServer()
    for interaction in recorded("instructions_only_with_tool_calls.yaml"):
        body = interaction["request"]["parsed_body"]
        for content in body["contents"]:
            for part in content["parts"]:
                if "thoughtSignature" in part:
                    fake.signatures[part["thoughtSignature"]] = "recorded"
        assert gemini_api.validate(fake, body) is None


def test_fake_response_has_the_recorded_shape():
    real = recorded("instructions_only_with_tool_calls.yaml")[0]["response"]["parsed_body"]
    fake = FakeProviderServer()
    ours = gemini_api._dump(
        gemini_api.build_response(
            fake,
            Turn(
                thinking="t",
                tool_calls=(ScriptedToolCall("generate_topic"),),
                usage=TurnUsage(reasoning_tokens=4),
            ),
            "m",
        )
    )
    assert set(real) - {"modelVersion", "responseId"} <= set(ours)
    real_part, our_part = (
        real["candidates"][0]["content"]["parts"][0],
        ours["candidates"][0]["content"]["parts"][-1],
    )
    assert set(real_part) == set(our_part) - {"functionCall"} | {"functionCall"}
    assert set(real["usageMetadata"]) - {"promptTokensDetails"} <= set(ours["usageMetadata"])


def test_fake_stream_frames_match_the_recording():
    raw = recorded("model_stream.yaml")[0]["response"]["body"]["string"]
    fake = FakeProviderServer()
    frames = gemini_api.stream_response(
        gemini_api.build_response(fake, Turn(text="A streamed answer."), "m")
    ).frames
    assert all(f.startswith("data: ") and f.endswith("\r\n\r\n") for f in frames)
    assert raw.startswith("data: ") and "\r\n\r\n" in raw
    real_last = json.loads(raw.strip().split("\r\n\r\n")[-1][6:])
    our_last = json.loads(frames[-1][6:])
    assert "finishReason" in real_last["candidates"][0] and "finishReason" in our_last["candidates"][0]
    assert "usageMetadata" in real_last and "usageMetadata" in our_last
