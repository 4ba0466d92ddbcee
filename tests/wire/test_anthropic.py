"""The Anthropic provider over the wire: the real `anthropic` SDK against the fake server."""

from __future__ import annotations

import pytest

from fake_provider import Fault, ScriptedToolCall, Turn, TurnUsage
from llmproc import LLMProcess, LLMProgram, MissingAPIKeyError, ProviderError, TextDelta

PROGRAM = """
[model]
name = "claude-haiku-4-5"
provider = "anthropic"
max_retries = {retries}
timeout = {timeout}
{model_extra}
[prompt]
system_prompt = "You are terse."
{extra}
"""


@pytest.fixture
def make_process(anthropic_env, write_program):
    def make(
        extra: str = "", *, retries: int = 2, timeout: float = 30, model_extra: str = "", tools=()
    ) -> LLMProcess:
        text = PROGRAM.format(extra=extra, retries=retries, timeout=timeout, model_extra=model_extra)
        program = LLMProgram.from_toml(write_program(text))
        for function in tools:
            program.add_tool(function)
        return LLMProcess(program)

    return make


def weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: City name.
    """
    return f"sunny in {city}"


async def test_plain_reply_sends_a_valid_request_with_cache_breakpoints(make_process, anthropic_env):
    anthropic_env.push(Turn(text="Hello there."))
    process = make_process()
    result = await process.run("Hi")
    assert str(result) == "Hello there."
    body = anthropic_env.bodies()[0]
    assert body["model"] == "claude-haiku-4-5"
    assert body["max_tokens"] == 4096
    assert body["system"] == [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]}
    ]
    request = anthropic_env.requests[0]
    assert request.headers["authorization"] == f"Bearer {anthropic_env.api_key}"
    assert "anthropic-version" in request.headers


async def test_the_seed_api_keeps_conversation_state(anthropic_env, write_program):
    anthropic_env.push(Turn(text="Python is a language."), Turn(text="It was created by Guido."))
    process = LLMProcess.from_toml(
        write_program(PROGRAM.format(extra="", retries=0, timeout=30, model_extra=""))
    )
    assert str(await process.run("What is Python?")) == "Python is a language."
    assert str(await process.run("Tell me more about that.")) == "It was created by Guido."
    second = anthropic_env.bodies()[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == "Python is a language."
    process.reset_state()
    anthropic_env.push(Turn(text="fresh"))
    await process.run("Hello")
    assert len(anthropic_env.bodies()[2]["messages"]) == 1


async def test_tool_round_trip_sends_results_the_api_accepts(make_process, anthropic_env):
    anthropic_env.push(
        Turn(text="Checking.", tool_calls=(ScriptedToolCall("weather", {"city": "Paris"}),)),
        Turn(text="It is sunny in Paris."),
    )
    process = make_process(tools=[weather])
    result = await process.run("Weather in Paris?")
    assert result.text == "It is sunny in Paris."
    assert result.tool_calls[0].result == "sunny in Paris"
    first, second = anthropic_env.bodies()
    assert first["tools"] == [
        {
            "name": "weather",
            "description": "Current weather in a city.",
            "input_schema": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"city": {"type": "string", "description": "City name."}},
                "required": ["city"],
            },
        }
    ]
    tool_use = second["messages"][1]["content"][1]
    assert tool_use["type"] == "tool_use" and tool_use["input"] == {"city": "Paris"}
    tool_result = second["messages"][2]["content"][0]
    assert tool_result["tool_use_id"] == tool_use["id"]
    assert tool_result["content"] == "sunny in Paris"
    assert tool_result["is_error"] is False


async def test_parallel_tool_calls_all_get_results(make_process, anthropic_env):
    calls = tuple(ScriptedToolCall("weather", {"city": c}) for c in ("Oslo", "Rome", "Lima"))
    anthropic_env.push(Turn(tool_calls=calls), Turn(text="Three answers."))
    result = await make_process(tools=[weather]).run("Weather in three cities?")
    assert result.text == "Three answers."
    results = anthropic_env.bodies()[1]["messages"][2]["content"]
    assert [r["content"] for r in results] == ["sunny in Oslo", "sunny in Rome", "sunny in Lima"]


async def test_streaming_delivers_text_deltas_and_the_same_result(make_process, anthropic_env):
    anthropic_env.push(
        Turn(tool_calls=(ScriptedToolCall("weather", {"city": "Kyoto"}),)),
        Turn(text="A long streamed answer about the weather in Kyoto."),
    )
    deltas: list[str] = []
    process = make_process(tools=[weather])
    process.add_callback(lambda e: deltas.append(e.text) if isinstance(e, TextDelta) else None)
    result = await process.run("Kyoto?")
    assert all(body.get("stream") is True for body in anthropic_env.bodies())
    assert len(deltas) > 1
    assert "".join(deltas) == result.text == "A long streamed answer about the weather in Kyoto."
    assert result.tool_calls[0].arguments == {"city": "Kyoto"}  # assembled from input_json_delta


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_thinking_blocks_are_echoed_unchanged_across_tool_turns(make_process, anthropic_env, stream):
    anthropic_env.push(
        Turn(
            thinking="I should look up the weather.",
            tool_calls=(ScriptedToolCall("weather", {"city": "Bern"}),),
        ),
        Turn(thinking="Now answer.", text="Sunny in Bern.", usage=TurnUsage(reasoning_tokens=7)),
    )
    process = make_process(
        "[parameters]\nmax_tokens = 8000\n[parameters.thinking]\nbudget_tokens = 2048\n", tools=[weather]
    )
    if stream:
        process.add_callback(lambda e: None)
    result = await process.run("Weather in Bern?")
    assert result.text == "Sunny in Bern."
    second = anthropic_env.bodies()[1]
    assert second["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    echoed = second["messages"][1]["content"][0]
    assert echoed["type"] == "thinking"
    assert echoed["thinking"] == "I should look up the weather."
    assert echoed["signature"] in anthropic_env.signatures  # the fake refuses a changed signature
    assert process.messages[1].content[0].signature == echoed["signature"]


async def test_thinking_without_max_tokens_leaves_room_for_the_answer(make_process, anthropic_env):
    anthropic_env.push(Turn(thinking="Hmm.", text="ok"))
    await make_process("[parameters.thinking]\nbudget_tokens = 8000\n").run("hi")
    body = anthropic_env.bodies()[0]
    assert body["max_tokens"] == 8000 + 4096  # the fake, like the API, refuses budget >= max_tokens


async def test_usage_with_cache_tokens_and_cost(make_process, anthropic_env):
    anthropic_env.push(
        Turn(
            text="cached",
            usage=TurnUsage(
                input_tokens=100, output_tokens=50, cache_read_tokens=1000, cache_write_tokens=200
            ),
        ),
    )
    process = make_process()
    result = await process.run("hi")
    assert result.usage.input_tokens == 100
    assert result.usage.cache_read_tokens == 1000
    assert result.usage.cache_write_tokens == 200
    assert result.usage.output_tokens == 50
    # claude-haiku-4-5: $1 input, $5 output, 1.25x cache write, 0.1x cache read per MTok
    expected = (100 * 1.0 + 50 * 5.0 + 200 * 1.25 + 1000 * 0.1) / 1_000_000
    assert result.cost_usd == pytest.approx(expected)
    assert process.cost_usd == pytest.approx(expected)


async def test_unknown_model_cost_is_unknown_not_zero(anthropic_env, write_program):
    anthropic_env.push(Turn(text="hi"), Turn(text="hi"))
    text = '[model]\nname = "claude-future-9"\nprovider = "anthropic"\n'
    result = await LLMProcess.from_toml(write_program(text)).run("hi")
    assert result.cost_usd is None
    priced = text + "[model.pricing]\ninput = 2.0\noutput = 10.0\n"
    result = await LLMProcess.from_toml(write_program(priced, "priced.toml")).run("hi")
    assert result.cost_usd == pytest.approx((10 * 2.0 + 5 * 10.0) / 1_000_000)


async def test_cache_breakpoints_stay_within_the_api_limit_over_many_turns(make_process, anthropic_env):
    process = make_process(tools=[weather])
    for turn in range(6):
        await process.run(f"turn {turn}")  # auto mode: a tool call, then text
    assert len(anthropic_env.requests) == 12  # the fake rejects more than 4 breakpoints with a 400


async def test_disable_automatic_caching_sends_no_breakpoints(make_process, anthropic_env):
    anthropic_env.push(Turn(text="ok"))
    await make_process(model_extra="disable_automatic_caching = true").run("hi")
    assert "cache_control" not in str(anthropic_env.bodies()[0])


async def test_parameters_map_to_the_api(make_process, anthropic_env):
    anthropic_env.push(Turn(text="ok"))
    extra = "[parameters]\nmax_tokens = 300\ntemperature = 0.5\ntop_k = 40\n"
    extra += 'stop = ["END"]\nreasoning_effort = "low"\n'
    await make_process(extra).run("hi")
    body = anthropic_env.bodies()[0]
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.5 and body["top_k"] == 40
    assert body["stop_sequences"] == ["END"]
    assert body["output_config"] == {"effort": "low"}


async def test_rate_limit_is_retried_honouring_retry_after(make_process, anthropic_env):
    anthropic_env.push(
        Fault(status=429, error_type="rate_limit_error", message="slow down", retry_after="0"),
        Fault(status=529, error_type="overloaded_error", message="Overloaded", retry_after="0"),
        Turn(text="finally"),
    )
    result = await make_process(retries=2).run("hi")
    assert result.text == "finally"
    assert len(anthropic_env.requests) == 3


async def test_exhausted_retries_raise_one_provider_error_and_keep_history(make_process, anthropic_env):
    process = make_process(retries=1)
    anthropic_env.push(Turn(text="first answer"))
    await process.run("one")
    before = process.messages
    anthropic_env.push(
        *[Fault(status=429, error_type="rate_limit_error", message="slow down", retry_after="0")] * 2
    )
    with pytest.raises(ProviderError) as info:
        await process.run("two")
    error = info.value
    assert error.status == 429 and error.kind == "rate_limit_error" and error.retryable
    assert (
        str(error) == "Anthropic API error 429 (rate_limit_error): slow down (rate limited; try again later)"
    )
    assert process.messages == before
    anthropic_env.push(Turn(text="works again"))
    assert str(await process.run("three")) == "works again"


async def test_bad_request_is_not_retried_and_says_why(make_process, anthropic_env):
    anthropic_env.push(Fault(status=400, error_type="invalid_request_error", message="prompt is too long"))
    with pytest.raises(
        ProviderError, match=r"Anthropic API error 400 \(invalid_request_error\): prompt is too long"
    ):
        await make_process(retries=2).run("hi")
    assert len(anthropic_env.requests) == 1


async def test_wrong_api_key_gets_a_hint(make_process, anthropic_env, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "wrong-key")
    with pytest.raises(ProviderError, match=r"401 \(authentication_error\).*\(check the API key\)") as info:
        await make_process(retries=0).run("hi")
    assert "wrong-key" not in str(info.value)


async def test_overload_inside_a_stream_is_retried(make_process, anthropic_env):
    anthropic_env.push(
        Fault(status=200, in_stream=True, error_type="overloaded_error", message="Overloaded"),
        Turn(text="after the overload"),
    )
    process = make_process(retries=1)
    process.add_callback(lambda e: None)
    assert str(await process.run("hi")) == "after the overload"


async def test_a_stream_cut_off_midway_fails_cleanly(make_process, anthropic_env):
    process = make_process(retries=0)
    process.add_callback(lambda e: None)
    anthropic_env.push(Fault(cut_stream_after=4))
    with pytest.raises(ProviderError):
        await process.run("hi")
    assert process.messages == ()


async def test_a_hanging_server_times_out(make_process, anthropic_env):
    anthropic_env.push(Fault(status=200, hang=3))
    with pytest.raises(ProviderError, match=r"timed out after 0.5s"):
        await make_process(retries=0, timeout=0.5).run("hi")


async def test_missing_api_key_names_the_variable(write_program, monkeypatch):
    text = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n'
    process = LLMProcess.from_toml(write_program(text))
    with pytest.raises(MissingAPIKeyError, match="set the environment variable ANTHROPIC_API_KEY"):
        await process.run("hi")
    assert process.messages == ()
    custom = LLMProcess.from_toml(write_program(text + 'api_key_env = "MY_CLAUDE_KEY"\n', "custom.toml"))
    with pytest.raises(MissingAPIKeyError, match=r"set the environment variable MY_CLAUDE_KEY$"):
        await custom.run("hi")


async def test_api_key_env_and_base_url_from_the_program(fake, write_program, monkeypatch):
    monkeypatch.setenv("MY_CLAUDE_KEY", fake.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # overridden by [model] base_url
    fake.push(Turn(text="via base_url"))
    text = (
        '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n'
        f'api_key_env = "MY_CLAUDE_KEY"\nbase_url = "{fake.url}"\n'
    )
    assert str(await LLMProcess.from_toml(write_program(text)).run("hi")) == "via base_url"


async def test_unreachable_server_is_a_provider_error(write_program, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    text = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\nbase_url = "http://127.0.0.1:9"\n'
    with pytest.raises(ProviderError, match="could not reach the Anthropic API"):
        await LLMProcess.from_toml(write_program(text)).run("hi")
