"""One behaviour suite for every provider: the same scenarios, each over its real SDK and wire format.

Switching a program between providers is a change of two lines; these tests hold each
provider to the same behaviour behind that switch.
"""

from __future__ import annotations

import json

import pytest

from fake_provider import Fault, ScriptedToolCall, Turn, TurnUsage
from llmproc import (
    LLMProcess,
    MissingAPIKeyError,
    ProviderError,
    TextDelta,
    ToolCallStarted,
    TurnFinished,
    Watch,
)
from provider_harness import ROUTES, Harness, make_harness, start


@pytest.fixture(params=ROUTES)
def harness(request, fake, monkeypatch) -> Harness:
    return make_harness(request.param, fake, monkeypatch)


def weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


async def test_plain_reply(harness, write_program):
    harness.fake.push(Turn(text="Hello."))
    result = await start(harness, write_program).run("Hi")
    assert result.text == "Hello."
    assert result.stop_reason == "end_turn"
    if harness.name.endswith("_vertex"):  # the Vertex route, authenticated with the access token
        request = harness.fake.requests[0]
        assert "/publishers/" in request.path, request.path
        assert request.headers["authorization"] == f"Bearer {harness.fake.api_key}"


async def test_tool_round_trip(harness, write_program):
    harness.fake.push(Turn(tool_calls=(ScriptedToolCall("weather", {"city": "Paris"}),)), Turn(text="Sunny."))
    result = await start(harness, write_program, tools=[weather]).run("Paris?")
    assert result.text == "Sunny."
    assert [(c.name, c.arguments, c.result) for c in result.tool_calls] == [
        ("weather", {"city": "Paris"}, "sunny in Paris")
    ]
    assert result.iterations == 2


async def test_parallel_tool_calls(harness, write_program):
    calls = tuple(ScriptedToolCall("weather", {"city": c}) for c in ("Oslo", "Rome"))
    harness.fake.push(Turn(tool_calls=calls), Turn(text="Both sunny."))
    process = start(harness, write_program, tools=[weather])
    result = await process.run("Oslo and Rome?")
    assert result.text == "Both sunny."
    assert {c.result for c in result.tool_calls} == {"sunny in Oslo", "sunny in Rome"}
    assert [r.text for r in process.messages[2].content] == ["sunny in Oslo", "sunny in Rome"]


async def test_streaming_text_and_tool_arguments(harness, write_program):
    harness.fake.push(
        Turn(tool_calls=(ScriptedToolCall("weather", {"city": "Kyoto"}),)),
        Turn(text="A streamed answer about Kyoto's weather."),
    )
    deltas: list[str] = []
    process = start(harness, write_program, tools=[weather])
    process.add_callback(lambda e: deltas.append(e.text) if isinstance(e, TextDelta) else None)
    result = await process.run("Kyoto?")
    assert all(harness.streamed(request) for request in harness.fake.requests)
    assert len(deltas) > 1 and "".join(deltas) == result.text
    assert result.tool_calls[0].arguments == {"city": "Kyoto"}


async def test_watchers_of_turns_and_tool_calls_alone_get_plain_requests(harness, write_program):
    harness.fake.push(
        Turn(tool_calls=(ScriptedToolCall("weather", {"city": "Lima"}),)), Turn(text="Warm in Lima.")
    )
    seen: list[str] = []
    process = start(harness, write_program, tools=[weather])
    watch = Watch(lambda e: seen.append(type(e).__name__), (ToolCallStarted, TurnFinished))
    result = await process.run("Lima?", on_event=watch)
    assert result.text == "Warm in Lima."
    assert seen == ["ToolCallStarted", "TurnFinished", "TurnFinished"]  # and no TextDelta
    assert len(harness.fake.requests) == 2
    assert not any(harness.streamed(request) for request in harness.fake.requests)


async def test_usage_and_cost(harness, write_program):
    harness.fake.push(
        Turn(text="ok", usage=TurnUsage(input_tokens=100, output_tokens=20, cache_read_tokens=50))
    )
    result = await start(harness, write_program).run("hi")
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cache_read_tokens) == (
        100,
        20,
        50,
    )
    if harness.name == "openai_compatible":
        assert result.cost_usd is None  # an unknown model costs "unknown", never zero
    else:
        assert result.cost_usd is not None and result.cost_usd > 0


async def test_conversation_state_and_reset(harness, write_program):
    harness.fake.push(Turn(text="one"), Turn(text="two"), Turn(text="fresh"))
    process = start(harness, write_program)
    await process.run("first")
    await process.run("second")
    assert process.get_last_message() == "two"
    process.reset_state()
    await process.run("again")
    last_request = harness.fake.bodies()[-1]
    turns = last_request.get("messages") or last_request.get("contents") or last_request.get("input")
    assert len([m for m in turns if m.get("role") != "system"]) == 1


async def test_rate_limit_is_retried(harness, write_program):
    harness.fake.push(harness.rate_limit(), Turn(text="after the retry"))
    assert str(await start(harness, write_program, retries=2).run("hi")) == "after the retry"
    assert len(harness.fake.requests) == 2


async def test_a_failed_run_is_atomic_and_the_next_run_works(harness, write_program):
    process = start(harness, write_program, retries=0, tools=[weather])
    harness.fake.push(Turn(text="first"))
    await process.run("one")
    before = process.messages
    harness.fake.push(Turn(tool_calls=(ScriptedToolCall("weather", {"city": "Lima"}),)), harness.rate_limit())
    with pytest.raises(ProviderError) as info:
        await process.run("two")  # fails after a completed tool round: nothing of it is kept
    assert info.value.status == 429 and info.value.retryable
    assert process.messages == before
    harness.fake.push(Turn(text="works"))
    assert str(await process.run("three")) == "works"


async def test_a_cut_stream_is_an_error_not_half_a_reply(harness, write_program):
    process = start(harness, write_program, retries=0)
    process.add_callback(lambda e: None)
    harness.fake.push(Fault(cut_stream_after=3))
    with pytest.raises(ProviderError, match=r"stream ended before the reply was complete"):
        await process.run("hi")
    assert process.messages == ()


@pytest.mark.parametrize(
    ("provider", "model"),
    [("anthropic_vertex", "claude-haiku-4-5@20251001"), ("gemini_vertex", "gemini-2.5-flash")],
)
async def test_vertex_without_google_credentials_says_how_to_get_them(
    provider, model, write_program, monkeypatch
):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
    text = f'[model]\nname = "{model}"\nprovider = "{provider}"\nregion = "us-east5"\nproject_id = "p"\n'
    process = LLMProcess.from_toml(write_program(text + "max_retries = 0\n"))
    with pytest.raises(MissingAPIKeyError, match=f"provider '{provider}' needs Google Cloud credentials"):
        await process.run("hi")
    assert process.messages == ()


@pytest.mark.parametrize("provider", ["anthropic_vertex", "gemini_vertex"])
async def test_vertex_access_token_variable_must_be_set(provider, write_program):
    text = (
        f'[model]\nname = "m"\nprovider = "{provider}"\nregion = "us-east5"\napi_key_env = "NO_SUCH_TOKEN"\n'
    )
    process = LLMProcess.from_toml(write_program(text))
    with pytest.raises(
        MissingAPIKeyError, match="needs an access token: set the environment variable NO_SUCH_TOKEN"
    ):
        await process.run("hi")


@pytest.mark.parametrize(
    ("provider", "model", "variable"),
    [
        ("anthropic", "claude-haiku-4-5", "ANTHROPIC_API_KEY"),
        ("openai", "gpt-4o-mini", "OPENAI_API_KEY"),
        ("gemini", "gemini-2.5-flash", "GEMINI_API_KEY or GOOGLE_API_KEY"),
    ],
)
async def test_missing_api_key_names_the_variable(provider, model, variable, write_program):
    process = LLMProcess.from_toml(write_program(f'[model]\nname = "{model}"\nprovider = "{provider}"\n'))
    with pytest.raises(
        MissingAPIKeyError,
        match=f"provider '{provider}' needs an API key: set the environment variable {variable}",
    ):
        await process.run("hi")
    assert process.messages == ()


async def test_an_image_from_an_mcp_tool_reaches_the_model_as_an_image(harness, write_program):
    """The tests' toolbox MCP server returns a PNG; each provider sends it in its own form."""
    import json
    import sys
    from pathlib import Path

    toolbox = Path(__file__).resolve().parents[1] / "mcp_servers" / "toolbox.py"
    server = f"[mcp.servers.toolbox]\ncommand = {json.dumps(sys.executable)}\n"
    server += f"args = [{json.dumps(str(toolbox))}]\n"
    server += '[tools.mcp]\ntoolbox = ["pixel"]\n'
    harness.fake.push(Turn(tool_calls=(ScriptedToolCall("toolbox__pixel", {}),)), Turn(text="A pixel."))
    async with start(harness, write_program, server) as process:
        result = await process.run("Show me the pixel.")
    assert result.text == "A pixel."
    body = harness.fake.requests[-1].body
    png = "iVBORw0KGgo"
    if harness.name.startswith("anthropic"):  # an image block inside the tool result
        (image,) = body["messages"][-1]["content"][0]["content"]
        assert image["type"] == "image" and image["source"]["media_type"] == "image/png"
        assert image["source"]["data"].startswith(png)
    elif harness.name == "openai_responses":  # function_call_output with an input_image
        (image,) = body["input"][-1]["output"]
        assert image["type"] == "input_image" and image["image_url"].startswith(
            f"data:image/png;base64,{png}"
        )
    elif harness.name.startswith("openai"):  # tool messages take only text: a user message follows
        tool, user = body["messages"][-2:]
        assert tool["role"] == "tool" and user["role"] == "user"
        assert user["content"][1]["image_url"]["url"].startswith(f"data:image/png;base64,{png}")
    else:  # Gemini: a multimodal function response
        response = body["contents"][-1]["parts"][0]["functionResponse"]
        (part,) = response["parts"]
        blob = part.get("inlineData") or part["inline_data"]
        assert blob["mime_type"] == "image/png" and blob["data"].startswith(png)


async def test_a_snapshot_restores_every_provider_specific_part(harness, write_program):
    """Thinking signatures, reasoning items and thought signatures survive JSON and a restore:
    the restored process sends exactly what the original sends next."""
    harness.fake.push(
        Turn(thinking="The user wants weather.", tool_calls=(ScriptedToolCall("weather", {"city": "Oslo"}),)),
        Turn(thinking="Now answer.", text="Sunny in Oslo."),
    )
    thinking = {
        "anthropic": "[parameters]\nmax_tokens = 4000\n[parameters.thinking]\ntype = 'enabled'\n"
        "budget_tokens = 2000\n",
        "openai_responses": "[parameters]\nreasoning_effort = 'low'\n",
        "gemini": "[parameters]\nthinking_budget = 512\n",
    }
    extra = thinking.get(harness.provider.removesuffix("_vertex"), "")
    extra = thinking.get(harness.name, extra)
    original = start(harness, write_program, extra, tools=[weather])
    await original.run("Weather in Oslo?")
    document = json.loads(json.dumps(original.snapshot()))
    restored = LLMProcess.restore(document, original.program)
    assert restored.id == original.id
    assert [m.id for m in restored.messages] == [m.id for m in original.messages]
    assert restored.messages == original.messages  # every block and provider part, equal
    reply = original.messages[1]
    replayed = {  # the part each provider must get back unchanged
        "anthropic": any(getattr(b, "signature", None) for b in reply.content),
        "openai_responses": bool(reply.provider_data),
        "gemini": bool(reply.provider_data),
    }
    key = harness.name if harness.name in replayed else harness.provider.removesuffix("_vertex")
    assert replayed.get(key, True), reply

    harness.fake.push(Turn(text="Rain later."), Turn(text="Rain later."))
    await original.run("And tomorrow?")
    await restored.run("And tomorrow?")
    sent_by_original, sent_by_restored = (r.body for r in harness.fake.requests[-2:])
    assert sent_by_restored == sent_by_original


async def test_a_server_that_is_not_listening_is_named_as_such(harness, write_program):
    """Through aiohttp the OpenAI SDK reported a refused connection as a 600 s timeout, and the
    Gemini route printed an SSLContext object's repr."""
    port = harness.fake.port
    process = start(harness, write_program, retries=0)
    harness.fake.stop()  # nothing listens on its port now: a local server not started
    with pytest.raises(ProviderError) as caught:
        await process.run("Hi")
    message = str(caught.value)
    assert message.startswith("could not reach the "), message
    assert message.endswith(
        f"cannot connect to 127.0.0.1:{port}: connection refused (is the server running?)"
    )
    assert caught.value.retryable and "object at 0x" not in message
