"""OpenAI-specific behaviour over the wire: request shape, compatible-server quirks, recorded traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fake_provider import FakeProviderServer, ScriptedToolCall, Turn, TurnUsage, openai_chat_api
from llmproc import LLMProcess, LLMProgram
from llmproc.kernel import Kernel
from llmproc.messages import Message, TextBlock, ToolCallBlock, ToolResultBlock
from llmproc.providers.base import ProviderRequest
from llmproc.providers.openai import OpenAIChatProvider
from llmproc.tools.base import ToolSpec

SAMPLES = Path(__file__).resolve().parent / "recordings" / "openai-chat"


def capital(country: str) -> str:
    """Get the capital of a country.

    Args:
        country: The country name.
    """
    return {"France": "Paris", "England": "London"}.get(country, "unknown")


def program_text(extra: str = "") -> str:
    return '[model]\nname = "gpt-4o-mini"\nprovider = "openai"\nmax_retries = 0\n' + extra


async def test_request_carries_system_tools_and_parameters(openai_env, write_program):
    openai_env.push(Turn(text="ok"))
    extra = (
        '[prompt]\nsystem_prompt = "Be brief."\n[parameters]\nmax_tokens = 50\ntemperature = 0.2\nseed = 7\n'
    )
    program = LLMProgram.from_toml(write_program(program_text(extra)))
    program.add_tool(capital)
    await LLMProcess(program).run("Capital of France?")
    body = openai_env.bodies()[0]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert body["max_tokens"] == 50  # a base_url (here OPENAI_BASE_URL) means a compatible server: old name
    assert body["temperature"] == 0.2 and body["seed"] == 7
    assert body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "capital",
            "description": "Get the capital of a country.",
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"country": {"type": "string", "description": "The country name."}},
                "required": ["country"],
            },
        },
    }


def test_official_api_gets_max_completion_tokens(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    program = LLMProgram(model_name="gpt-4o-mini", provider="openai", parameters={"max_tokens": 50})
    kwargs = OpenAIChatProvider(program.provider_settings, Kernel()).build_request(
        ProviderRequest("", [Message.user("hi")], [])
    )
    assert kwargs["max_completion_tokens"] == 50 and "max_tokens" not in kwargs


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_compatible_server_quirks_do_not_lose_a_turn(openai_env, write_program, stream):
    quirks = frozenset({"no_tool_call_ids", "empty_arguments", "no_usage"})
    openai_env.push(
        Turn(tool_calls=(ScriptedToolCall("ping"), ScriptedToolCall("ping")), quirks=quirks),
        Turn(text="pong twice", quirks=frozenset({"no_usage"})),
    )

    def ping() -> str:
        """Ping."""
        return "pong"

    program = LLMProgram.from_toml(write_program(program_text()))
    program.add_tool(ping)
    process = LLMProcess(program)
    if stream:
        process.add_callback(lambda e: None)
    result = await process.run("ping twice")
    assert result.text == "pong twice"
    assert [c.result for c in result.tool_calls] == ["pong", "pong"]
    ids = [c.id for c in process.messages[1].tool_calls]
    assert len(set(ids)) == 2 and all(ids)  # generated, distinct, and echoed back (the fake checks)
    assert result.usage.input_tokens == 0 and result.usage.output_tokens == 0


async def test_cached_and_reasoning_tokens_are_counted(openai_env, write_program):
    openai_env.push(Turn(text="ok", usage=TurnUsage(input_tokens=10, output_tokens=30, cache_read_tokens=90,
                                                    reasoning_tokens=12)))  # fmt: skip
    result = await LLMProcess.from_toml(write_program(program_text())).run("hi")
    assert result.usage.input_tokens == 10  # prompt_tokens minus cached
    assert result.usage.cache_read_tokens == 90
    assert result.usage.reasoning_tokens == 12
    assert result.cost_usd == pytest.approx((10 * 0.15 + 90 * 0.075 + 30 * 0.60) / 1_000_000)


def recorded(name: str) -> list[dict]:
    path = SAMPLES / name
    if not path.exists():
        pytest.fail(f"recorded traffic {path} is missing; it belongs in tests/wire/recordings/")
    return yaml.safe_load(path.read_text())["interactions"]


def shape(value):
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_fake_accepts_the_recorded_requests():
    for interaction in recorded("multiple_agent_tool_calls.yaml")[-2:] + recorded("text_response.yaml"):
        assert openai_chat_api.validate(interaction["request"]["parsed_body"]) is None


def test_fake_completion_has_the_recorded_shape():
    real = recorded("multiple_agent_tool_calls.yaml")[-2]["response"]["parsed_body"]
    fake = FakeProviderServer()
    ours = openai_chat_api.build_completion(
        fake, Turn(tool_calls=(ScriptedToolCall("get_capital", {"country": "England"}),)), "gpt-4o-mini"
    ).model_dump(mode="json", exclude_unset=True)
    assert set(ours) == set(real) - {"id"} | {"id"}
    assert shape(ours["choices"][0]["message"]["tool_calls"]) == shape(
        real["choices"][0]["message"]["tool_calls"]
    )
    assert set(ours["usage"]) == set(real["usage"])
    assert set(ours["usage"]["completion_tokens_details"]) == set(real["usage"]["completion_tokens_details"])


def test_fake_stream_has_the_recorded_shape():
    raw = recorded("run_stream_sync_streams_real_model.yaml")[0]["response"]["body"]["string"]
    real = [json.loads(f[6:]) for f in raw.strip().split("\n\n") if f.startswith("data: {")]
    fake = FakeProviderServer()
    completion = openai_chat_api.build_completion(
        fake, Turn(tool_calls=(ScriptedToolCall("get_capital", {"country": "UK"}),)), "gpt-4o-mini"
    )
    frames = openai_chat_api.stream_response(completion, include_usage=True).frames
    assert frames[-1] == "data: [DONE]\n\n" and raw.rstrip().endswith("data: [DONE]")
    ours = [json.loads(f[6:]) for f in frames if f.startswith("data: {")]
    assert ours[-1]["choices"] == [] == real[-1]["choices"]  # usage rides on a last chunk without choices
    assert set(ours[-1]["usage"]) == set(real[-1]["usage"])
    real_first_call = real[0]["choices"][0]["delta"]["tool_calls"][0]
    our_first_call = next(c["choices"][0]["delta"]["tool_calls"][0] for c in ours if c["choices"] and
                          c["choices"][0]["delta"].get("tool_calls"))  # fmt: skip
    assert set(our_first_call) == set(real_first_call)
    assert [c["choices"][0]["finish_reason"] for c in ours if c["choices"]][-1] == "tool_calls"


def test_our_request_matches_the_recorded_conversation():
    real = recorded("multiple_agent_tool_calls.yaml")[-1]["request"]["parsed_body"]
    first_call = real["messages"][1]["tool_calls"][0]
    second_call = real["messages"][5]["tool_calls"][0]

    def call(raw: dict) -> ToolCallBlock:
        return ToolCallBlock(raw["id"], raw["function"]["name"], json.loads(raw["function"]["arguments"]))

    history = [
        Message.user("What is the capital of France?"),
        Message("assistant", (call(first_call),)),
        Message("user", (ToolResultBlock(first_call["id"], (TextBlock("Paris"),)),)),
        Message("assistant", (TextBlock("The capital of France is Paris.\n"),)),
        Message.user("What is the capital of England?"),
        Message("assistant", (call(second_call),)),
        Message("user", (ToolResultBlock(second_call["id"], (TextBlock("London"),)),)),
    ]
    program = LLMProgram(model_name="gpt-4o-mini", provider="openai")
    tool = real["tools"][0]["function"]
    spec = ToolSpec(tool["name"], tool["description"], tool["parameters"])
    ours = OpenAIChatProvider(program.provider_settings, Kernel()).build_request(
        ProviderRequest("", history, [spec])
    )
    normalised = [{k: v for k, v in m.items() if v is not None} for m in ours["messages"]]
    assert normalised == real["messages"]
    assert ours["tools"] == real["tools"]
