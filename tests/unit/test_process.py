"""Process behaviour with the offline scripted provider: state, atomic runs, tools, events."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import anyio
import pytest

import llmproc
from llmproc import (
    LLMProcess,
    LLMProgram,
    ProviderError,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    ToolError,
    TurnFinished,
    tool,
)


def scripted(*replies, **kwargs) -> LLMProgram:
    return LLMProgram(model_name="test", provider="scripted", scripted_replies=list(replies), **kwargs)


def call(name: str, **arguments) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


async def test_conversation_state_is_kept_across_runs_and_reset():
    process = await scripted("first", "second", "third").start()
    assert str(await process.run("one")) == "first"
    assert str(await process.run("two")) == "second"
    assert process.get_last_message() == "second"
    assert [m.role for m in process.messages] == ["user", "assistant", "user", "assistant"]
    process.reset_state()
    assert process.messages == ()
    assert str(await process.run("again")) == "first"


async def test_a_python_function_can_script_the_model_from_the_conversation():
    def model(messages):
        last = messages[-1]
        if last.role == "user" and last.content[0].type == "tool_result":
            return f"tool said {last.content[0].text}"
        return {"tool_calls": [{"name": "shout", "arguments": {"text": last.text}}]}

    async def shout(text: str) -> str:
        """Upper-case text."""
        return text.upper()

    program = LLMProgram(model_name="fn", provider="scripted", scripted_function=model, tools=[shout])
    result = await (await program.start()).run("hello")
    assert result.text == "tool said HELLO"


async def test_echo_mode_replies_with_the_user_message():
    process = await LLMProgram(model_name="echo", provider="scripted").start()
    result = await process.run("ping")
    assert result.text == "ping"
    assert result.cost_usd == 0.0
    assert result.usage.input_tokens > 0


async def test_run_result_carries_usage_tool_calls_and_process_id():
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    program = scripted(call("add", a=2, b=3), "five")
    program.add_tool(add)
    process = await program.start()
    result = await process.run("2+3?")
    assert result.text == "five"
    assert result.process_id == process.id
    assert result.stop_reason == "end_turn"
    assert result.iterations == 2
    assert [(c.name, c.arguments, c.result, c.is_error) for c in result.tool_calls] == [
        ("add", {"a": 2, "b": 3}, "5", False)
    ]
    assert result.to_dict()["tool_calls"][0]["name"] == "add"


async def test_several_tool_calls_in_one_turn_run_concurrently():
    both_started = asyncio.Event()
    started = 0

    async def wait(name: str) -> str:
        """Wait until every call of the turn has started."""
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), timeout=5)
        return name

    reply = {
        "tool_calls": [
            {"name": "wait", "arguments": {"name": "a"}},
            {"name": "wait", "arguments": {"name": "b"}},
        ]
    }
    program = scripted(reply, "done")
    program.add_tool(wait)
    process = await program.start()
    result = await process.run("go")
    assert {c.result for c in result.tool_calls} == {"a", "b"}
    results = process.messages[2].content
    assert [r.text for r in results] == ["a", "b"]  # results keep the order of the calls


async def test_a_failing_tool_becomes_an_error_result_not_an_exception():
    def broken() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    def refuses() -> str:
        """Refuses politely."""
        raise ToolError("not allowed here")

    program = scripted(
        {"tool_calls": [{"name": "broken"}, {"name": "refuses"}, {"name": "missing"}]}, "recovered"
    )
    program.add_tool(broken).add_tool(refuses)
    process = await program.start()
    result = await process.run("try")
    assert result.text == "recovered"
    outcomes = {c.name: (c.is_error, c.result) for c in result.tool_calls}
    assert outcomes["broken"] == (True, "tool 'broken' failed: RuntimeError: disk on fire")
    assert outcomes["refuses"] == (True, "not allowed here")
    assert outcomes["missing"][0] is True
    assert "unknown tool 'missing'; available tools: broken, refuses" in outcomes["missing"][1]


async def test_bad_tool_arguments_are_reported_to_the_model():
    def square(x: int) -> int:
        """Square a number."""
        return x * x

    program = scripted(call("square", x="abc"), "ok")
    program.add_tool(square)
    result = await (await program.start()).run("go")
    assert result.tool_calls[0].is_error
    assert (
        "invalid arguments for tool 'square': x: Input should be a valid integer"
        in result.tool_calls[0].result
    )


async def test_a_slow_tool_times_out_as_an_error_result():
    async def slow() -> str:
        """Never finishes in time."""
        await asyncio.sleep(30)
        return "late"

    program = LLMProgram(
        model_name="t", provider="scripted", scripted_replies=[call("slow"), "gave up"], tool_timeout=0.05
    )
    program.add_tool(slow)
    result = await (await program.start()).run("go")
    assert result.text == "gave up"
    assert result.tool_calls[0].result == "tool 'slow' timed out after 0.05s"


async def test_a_blocking_sync_tool_is_abandoned_at_its_timeout():
    import threading

    released = threading.Event()

    def blocking() -> str:
        """Blocks its thread until the run is over: a run that waited for it would never end."""
        released.wait(60)
        return "late"

    program = LLMProgram(
        model_name="t",
        provider="scripted",
        scripted_replies=[call("blocking"), "moved on"],
        tool_timeout=0.05,
    )
    program.add_tool(blocking)
    try:
        with anyio.fail_after(30):  # far below the 60 s the thread would block
            result = await (await program.start()).run("go")
    finally:
        released.set()
    assert result.text == "moved on"
    assert result.tool_calls[0].result == "tool 'blocking' timed out after 0.05s"


async def test_max_iterations_stops_a_looping_model():
    def noop() -> str:
        """Does nothing."""
        return "again"

    program = LLMProgram(
        model_name="t", provider="scripted", scripted_replies=[call("noop")], max_iterations=3
    )
    program.config.scripted.when_exhausted = "repeat_last"
    program.add_tool(noop)
    process = await program.start()
    result = await process.run("loop")
    assert result.stop_reason == "max_iterations"
    assert result.iterations == 3
    assert len(result.tool_calls) == 3
    # the history stays well-formed: every tool call has its result
    assert process.messages[-1].content[0].type == "tool_result"


async def test_a_failed_run_leaves_the_history_unchanged():
    process = await scripted("only one").start()
    await process.run("first")
    before = process.messages
    with pytest.raises(ProviderError, match="no reply for model turn 2"):
        await process.run("second")
    assert process.messages == before
    assert process.messages[-1].text == "only one"


async def test_a_cancelled_run_leaves_the_history_unchanged():
    gate = asyncio.Event()

    async def hang() -> str:
        """Waits forever."""
        gate.set()
        await asyncio.sleep(60)
        return "never"

    program = scripted(call("hang"), "never reached")
    program.add_tool(hang)
    process = await program.start()
    task = asyncio.create_task(process.run("go"))
    await asyncio.wait_for(gate.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert process.messages == ()


async def test_events_report_text_tool_calls_and_turns_in_order():
    def echo(text: str) -> str:
        """Echo text."""
        return text

    program = scripted(call("echo", text="hi"), "all done now")
    program.add_tool(echo)
    process = await program.start()
    events = []

    async def collect(event):
        events.append(event)

    await process.run("go", on_event=collect)
    kinds = [type(e).__name__ for e in events]
    assert kinds[:3] == ["ToolCallStarted", "ToolCallFinished", "TurnFinished"]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "all done now"
    assert isinstance(events[-1], TurnFinished) and events[-1].iteration == 2
    assert isinstance(events[0], ToolCallStarted) and isinstance(events[1], ToolCallFinished)


async def test_a_broken_event_callback_does_not_break_the_run(caplog):
    def explode(event):
        raise ValueError("bad observer")

    process = await scripted("fine").start()
    process.add_callback(explode)
    assert str(await process.run("go")) == "fine"
    assert "event callback" in caplog.text


async def test_fork_copies_state_and_diverges_independently():
    process = await scripted("a", "b", "c").start()
    await process.run("one")
    child = process.fork()
    assert child.id != process.id and child.parent_id == process.id
    assert child.messages == process.messages
    assert child.messages[0] is process.messages[0]  # shared, immutable
    assert str(await child.run("child")) == "b"
    assert len(process.messages) == 2 and len(child.messages) == 4


async def test_function_tool_schema_comes_from_hints_and_docstring():
    @tool(name="lookup_city", access="read")
    def lookup(city: str, limit: int = 3, exact: bool = False) -> list[str]:
        """Find places by name.

        Args:
            city: The city to look for.
            limit: How many results at most.
        """
        return [city] * limit

    program = scripted("x", tools=[lookup])
    process = LLMProcess(program)
    (spec,) = await process.tool_specs()
    assert spec.name == "lookup_city"
    assert spec.description == "Find places by name."
    assert spec.parameters == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "city": {"type": "string", "description": "The city to look for."},
            "limit": {"type": "integer", "default": 3, "description": "How many results at most."},
            "exact": {"type": "boolean", "default": False},
        },
        "required": ["city"],
    }


def test_run_works_from_plain_synchronous_code(tmp_path):
    program = tmp_path / "p.toml"
    program.write_text('[model]\nname = "s"\nprovider = "scripted"\n[scripted]\nreplies = ["one", "two"]\n')
    script = textwrap.dedent(
        f"""
        from llmproc import LLMProcess
        process = LLMProcess.from_toml({str(program)!r})
        print(process.run("hi"))
        print(process.run("again"))
        print(len(process.messages))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["one", "two", "4"]


async def test_run_rejects_a_non_string_message():
    process = await scripted("x").start()
    with pytest.raises(TypeError, match="takes the user message as a str"):
        await process.run(42)  # type: ignore[arg-type]


async def test_run_rejects_an_empty_message_and_changes_nothing():
    process = await scripted("x").start()
    for empty in ("", "  \n"):
        with pytest.raises(llmproc.ProcessError, match="run\\(\\) needs a message: this one is empty"):
            await process.run(empty)
    assert process.messages == ()
    assert str(await process.run("now")) == "x"


def test_public_api_is_exactly_what_init_exports():
    assert sorted(llmproc.__all__) == sorted(
        [
            "LLMProcError", "LLMProcess", "LLMProgram", "McpServerError", "Message", "MissingAPIKeyError",
            "ProcessError", "ProgramError", "ProviderError", "RunEvent", "RunResult", "SnapshotError",
            "TextDelta", "ToolCallFinished", "ToolCallRecord", "ToolCallStarted", "ToolError", "TurnFinished",
            "Usage", "Watch", "__version__", "tool",
        ]
    )  # fmt: skip
    for name in llmproc.__all__:
        assert hasattr(llmproc, name)


def test_importing_llmproc_does_not_import_provider_sdks():
    sdks = "('anthropic', 'openai', 'google.genai', 'mcp')"
    code = f"import sys, llmproc; print(sorted(m for m in {sdks} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


async def test_sync_tools_stuck_past_their_timeout_do_not_starve_the_rest_of_the_program(tmp_path):
    """Abandoned tool threads used to fill asyncio's shared executor: after a few, the state
    store's commits and DNS look-ups, which need a thread there too, waited forever."""
    import threading

    from llmproc.store import SqliteStore
    from llmproc.tools.threads import MAX_TOOL_THREADS

    released = threading.Event()

    def stuck() -> str:
        """Blocks until the test ends."""
        released.wait(120)
        return "late"

    calls = [call("stuck") for _ in range(MAX_TOOL_THREADS + 4)]
    program = LLMProgram(
        model_name="t",
        provider="scripted",
        scripted_replies=[{"tool_calls": [c["tool_calls"][0] for c in calls]}, "moved on"],
        tool_timeout=0.2,
    )
    program.add_tool(stuck)
    store = SqliteStore(tmp_path / "state.db")
    try:
        result = await (await program.start()).run("go")
        assert result.text == "moved on"
        assert {c.result for c in result.tool_calls} == {"tool 'stuck' timed out after 0.2s"}
        with anyio.fail_after(30):  # both would wait for a stuck thread on the shared executor
            assert await asyncio.to_thread(lambda: "free") == "free"
            assert await store.default("someone", "echo") is None
            await asyncio.get_running_loop().getaddrinfo("localhost", 80)
    finally:
        released.set()
        await store.close()
