"""OpenAI's Responses API route over the wire: route choice, reasoning across tool turns, recorded traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fake_provider import FakeProviderServer, Fault, ScriptedToolCall, Turn, TurnUsage
from fake_provider import openai_responses_api as responses_api
from llmproc import LLMProcess, LLMProgram, ProgramError, ProviderError
from llmproc.kernel import Kernel
from llmproc.messages import ImageBlock, Message, TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock
from llmproc.providers.base import ProviderRequest
from llmproc.providers.openai_responses import OpenAIResponsesProvider
from llmproc.tools.base import ToolSpec

SAMPLES = Path(__file__).resolve().parent / "recordings" / "openai-responses"


def capital(country: str) -> str:
    """Get the capital of a country.

    Args:
        country: The country name.
    """
    return {"France": "Paris", "Peru": "Lima"}.get(country, "unknown")


def program_text(model: str = "o4-mini", extra: str = "", model_extra: str = "") -> str:
    return f'[model]\nname = "{model}"\nprovider = "openai"\nmax_retries = 1\n{model_extra}' + extra


def streamed(process: LLMProcess) -> LLMProcess:
    process.add_callback(lambda event: None)
    return process


@pytest.mark.parametrize(
    ("model", "model_extra", "route"),
    [
        ("o4-mini", "", "/v1/responses"),
        ("gpt-5-mini", "", "/v1/responses"),
        ("gpt-4o-mini", "", "/v1/chat/completions"),
        ("gpt-4o-mini", 'api = "responses"\n', "/v1/responses"),
        ("o4-mini", 'api = "chat"\n', "/v1/chat/completions"),
    ],
)
async def test_route_follows_the_model_and_model_api(openai_env, write_program, model, model_extra, route):
    openai_env.push(Turn(text="ok"))
    result = await LLMProcess.from_toml(write_program(program_text(model, model_extra=model_extra))).run("hi")
    assert result.text == "ok"
    assert openai_env.requests[0].path == route


async def test_a_compatible_server_stays_on_chat_unless_asked(openai_env, write_program):
    base = f'base_url = "{openai_env.url}/v1"\n'
    openai_env.push(Turn(text="chat"), Turn(text="responses"))
    await LLMProcess.from_toml(write_program(program_text("o3", model_extra=base))).run("hi")
    text = program_text("gpt-oss-20b", model_extra=base + 'api = "responses"\n')
    await LLMProcess.from_toml(write_program(text, "other.toml")).run("hi")
    assert [r.path for r in openai_env.requests] == ["/v1/chat/completions", "/v1/responses"]


async def test_request_shape(openai_env, write_program):
    openai_env.push(Turn(text="ok"))
    extra = (
        '[prompt]\nsystem_prompt = "Be brief."\n[parameters]\nmax_tokens = 900\n'
        'reasoning_effort = "low"\nreasoning_summary = "auto"\n'
    )
    program = LLMProgram.from_toml(write_program(program_text(extra=extra)))
    program.add_tool(capital)
    await LLMProcess(program).run("Capital of France?")
    body = openai_env.bodies("/responses")[0]
    assert body["instructions"] == "Be brief."
    assert body["input"] == [{"role": "user", "content": "Capital of France?"}]
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["max_output_tokens"] == 900
    assert body["tools"] == [
        {
            "type": "function",
            "name": "capital",
            "description": "Get the capital of a country.",
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"country": {"type": "string", "description": "The country name."}},
                "required": ["country"],
            },
            "strict": False,
        }
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_reasoning_is_carried_across_tool_turns(openai_env, write_program, stream):
    openai_env.push(
        Turn(thinking="Look it up.", tool_calls=(ScriptedToolCall("capital", {"country": "Peru"}),)),
        Turn(thinking="Now answer.", text="Lima."),
        Turn(text="Still here."),
    )
    program = LLMProgram.from_toml(write_program(program_text()))
    program.add_tool(capital)
    process = LLMProcess(program)
    if stream:
        streamed(process)
    result = await process.run("Capital of Peru?")
    assert result.text == "Lima."
    assert process.messages[1].content[0] == ThinkingBlock("Look it up.", provider="openai")
    await process.run("and again?")
    # the fake refuses reasoning items whose encrypted content changed, or that lost their following item
    final_input = openai_env.bodies("/responses")[-1]["input"]
    kinds = [item.get("type", item.get("role")) for item in final_input]
    assert kinds == [
        "user",
        "reasoning",
        "function_call",
        "function_call_output",
        "reasoning",
        "assistant",
        "user",
    ]
    reasoning = final_input[1]
    assert openai_env.signatures[reasoning["encrypted_content"]] == "Look it up."
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Look it up."}]
    assert all("id" not in item for item in final_input if item.get("type") != "reasoning")


async def test_usage_counts_cached_and_reasoning_tokens(openai_env, write_program):
    usage = TurnUsage(input_tokens=100, output_tokens=50, cache_read_tokens=400, reasoning_tokens=30)
    openai_env.push(Turn(text="ok", usage=usage))
    result = await LLMProcess.from_toml(write_program(program_text())).run("hi")
    assert (result.usage.input_tokens, result.usage.cache_read_tokens) == (100, 400)
    assert (result.usage.output_tokens, result.usage.reasoning_tokens) == (50, 30)
    assert result.cost_usd is not None and result.cost_usd > 0


async def test_max_output_tokens_ends_the_run_with_that_reason(openai_env, write_program):
    openai_env.push(Turn(text="cut sh", stop_reason="max_tokens"))
    result = await streamed(LLMProcess.from_toml(write_program(program_text()))).run("hi")
    assert (result.text, result.stop_reason) == ("cut sh", "max_tokens")


async def test_an_error_event_in_the_stream_is_retried_then_reported(openai_env, write_program):
    overloaded = Fault(
        status=200, in_stream=True, error_type="server_error", message="The server had an error"
    )
    openai_env.push(overloaded, Turn(text="second try"))
    process = streamed(LLMProcess.from_toml(write_program(program_text())))
    assert str(await process.run("hi")) == "second try"
    openai_env.push(overloaded, overloaded)
    with pytest.raises(ProviderError, match=r"OpenAI API error \(server_error\): The server had an error"):
        await process.run("again")
    assert len(process.messages) == 2  # the failed run left nothing behind


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        (
            "gpt-4o-mini",
            'reasoning_summary = "auto"',
            "not supported by provider 'openai' on Chat Completions",
        ),
        ("o3", 'stop = ["END"]', "not supported by provider 'openai' on the Responses API"),
    ],
)
def test_parameters_are_checked_against_the_route(write_program, model, extra, message):
    with pytest.raises(ProgramError, match=message):
        LLMProgram.from_toml(write_program(program_text(model, extra=f"[parameters]\n{extra}\n")))


def test_api_is_an_openai_setting(write_program):
    text = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\napi = "responses"\n'
    with pytest.raises(ProgramError, match="only provider = 'openai' takes it"):
        LLMProgram.from_toml(write_program(text))


def _provider() -> OpenAIResponsesProvider:
    return OpenAIResponsesProvider(
        LLMProgram(model_name="o4-mini", provider="openai").provider_settings, Kernel()
    )


def test_history_from_another_provider_converts_and_images_reach_tools():
    image = ImageBlock(data="aGk=", media_type="image/png")
    history = [
        Message.user("Look"),
        Message(
            "assistant",
            (
                ThinkingBlock("foreign", signature="sig"),
                TextBlock("Calling."),
                ToolCallBlock("t1", "shot", {}),
            ),
        ),
        Message("user", (ToolResultBlock("t1", (TextBlock("a screenshot"), image)),)),
    ]
    body = _provider().build_request(ProviderRequest("", history, []))
    assert responses_api.validate(None, body | {"model": "o4-mini"}) is None
    assert body["input"][1:] == [
        {"role": "assistant", "content": "Calling."},  # thinking signed by another provider is dropped
        {"type": "function_call", "call_id": "t1", "name": "shot", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "t1",
            "output": [
                {"type": "input_text", "text": "a screenshot"},
                {"type": "input_image", "image_url": "data:image/png;base64,aGk=", "detail": "auto"},
            ],
        },
    ]


# -- recorded traffic (tests/wire/recordings/openai-responses) -----------------------------------


def recorded(name: str) -> list[dict]:
    path = SAMPLES / name
    if not path.exists():
        pytest.fail(f"wire sample {path} is missing")
    return yaml.safe_load(path.read_text())["interactions"]


def test_fake_accepts_the_recorded_requests():
    for name in ("model_simple_response_with_tool_call.yaml", "reasoning_effort.yaml", "stream.yaml"):
        for interaction in recorded(name):
            assert responses_api.validate(None, interaction["request"]["parsed_body"]) is None, name


def test_fake_response_has_the_recorded_shape():
    real = recorded("model_simple_response_with_tool_call.yaml")[0]["response"]["parsed_body"]
    body = {"model": "gpt-4o", "input": "hi"}
    turn = Turn(tool_calls=(ScriptedToolCall("get_capital", {"country": "PotatoLand"}),))
    ours = responses_api.build_response(FakeProviderServer(), turn, body).model_dump(
        mode="json", exclude_none=True
    )
    assert set(ours["output"][0]) == set(real["output"][0])
    assert set(ours["usage"]) == set(real["usage"])
    assert {"id", "object", "output", "status", "usage", "model"} <= set(ours) & set(real)
    reasoning = recorded("reasoning_effort.yaml")[0]["response"]["parsed_body"]["output"]
    turn = Turn(thinking="", text="Alfajores.")
    ours = responses_api.build_response(FakeProviderServer(), turn, body).model_dump(
        mode="json", exclude_none=True
    )
    assert [item["type"] for item in ours["output"]] == [item["type"] for item in reasoning]
    assert set(ours["output"][1]) == set(reasoning[1])


def _event_types(lines: list[str]) -> list[str]:
    """Event types in order, a run of deltas counted once (chunk sizes differ)."""
    types = [json.loads(line[6:])["type"] for line in lines if line.startswith("data: {")]
    return [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]


def test_fake_stream_has_the_recorded_event_order():
    interactions = recorded("stream.yaml")
    fake = FakeProviderServer()
    body = {"model": "gpt-4o", "input": "hi"}
    for interaction, turn in zip(
        interactions,
        (
            Turn(tool_calls=(ScriptedToolCall("get_capital", {"country": "France"}),)),
            Turn(text="The capital of France is Paris."),
        ),
        strict=True,
    ):
        real = _event_types(interaction["response"]["body"]["string"].splitlines())
        frames = responses_api.stream_response(responses_api.build_response(fake, turn, body)).frames
        ours = _event_types([line for frame in frames for line in frame.splitlines()])
        assert ours == real


def test_our_request_matches_the_recorded_conversation():
    real = recorded("stream.yaml")[1]["request"]["parsed_body"]
    call = real["input"][1]
    history = [
        Message.user("What is the capital of France?"),
        Message("assistant", (ToolCallBlock(call["call_id"], call["name"], json.loads(call["arguments"])),)),
        Message("user", (ToolResultBlock(call["call_id"], (TextBlock("Paris"),)),)),
    ]
    tool = real["tools"][0]
    spec = ToolSpec(tool["name"], tool["description"], tool["parameters"])
    ours = _provider().build_request(ProviderRequest("", history, [spec]))
    assert ours["input"] == real["input"]
    assert [{**t, "strict": True} for t in ours["tools"]] == real["tools"]  # recorded with a strict schema
