"""spawn, fork and goto through the Anthropic SDK and the fake provider server, with scripted model turns.

Children run concurrently, so replies that depend on who is asking come from the fake
server's responder (by system prompt or task text) rather than from the ordered script.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from fake_provider import FakeProviderServer, ScriptedToolCall, Turn
from helpers import call, system_text
from llmproc import LLMProcess, LLMProgram, ProcessError
from llmproc.snapshot import snapshot

MODEL = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\n'


def text_of(message: dict[str, Any]) -> str:
    """The text of a wire message (plain string or text blocks; cache markers ignored)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        block
        for message in body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


def result_text(block: dict[str, Any]) -> str:
    content = block["content"]
    return content if isinstance(content, str) else "".join(c.get("text", "") for c in content)


@pytest.fixture
def linked(write_program, tmp_path, anthropic_env):
    """main.toml linking an expert that has a preloaded notes file."""
    (tmp_path / "notes.md").write_text("The launch code is 4711.\n")
    write_program(
        MODEL + '[prompt]\nsystem_prompt = "You are the expert."\n[preload]\nfiles = ["notes.md"]\n',
        "expert.toml",
    )
    write_program(MODEL + '[prompt]\nsystem_prompt = "You are the critic."\n', "critic.toml")

    def main(extra: str = "") -> LLMProcess:
        path = write_program(
            MODEL
            + '[prompt]\nsystem_prompt = "You are the main assistant."\n'
            + '[tools]\nbuiltin = ["spawn"]\n'
            + '[linked_programs]\ncritic = "critic.toml"\n'
            + '[linked_programs.expert]\npath = "expert.toml"\ndescription = "Knows the notes."\n'
            + extra,
            "main.toml",
        )
        return LLMProcess.from_toml(path)

    return main


def by_system_prompt(fake: FakeProviderServer, answers: dict[str, str]) -> None:
    def respond(view: Any, body: Any) -> Turn | None:
        system = system_text(body)
        for marker, answer in answers.items():
            if marker in system and not view.last_is_tool_result:
                return Turn(text=answer)
        return None

    fake.responder = respond


# -- spawn -----------------------------------------------------------------------------------------


async def test_a_spawned_child_is_recorded_with_its_cost_until_its_call_is_gone(linked, anthropic_env):
    fake = anthropic_env
    process = linked()
    fake.push(call("spawn", program_name="expert", prompt="What is the launch code?"))
    by_system_prompt(fake, {"You are the expert.": "It is 4711."})
    fake.push()
    result = await process.run("Ask the expert for the code.")
    (child,) = result.children
    assert (child.kind, child.program) == ("spawn", "expert")
    assert child.tool_call_id == result.tool_calls[0].id and child.process_id != process.id
    assert child.cost_usd is not None and child.cost_usd > 0 and child.usage.output_tokens > 0
    assert process.child_records == (child,)
    assert result.to_dict()["children"][0]["program"] == "expert"

    restored = LLMProcess.restore(json.loads(json.dumps(snapshot(process))))
    assert restored.child_records == (child,)  # kept with the conversation
    assert process.fork().child_records == (child,)  # a copy shares the history, so the record

    process.goto(process.messages[0].id)  # back before the call that spawned it
    assert process.child_records == ()


async def test_a_goto_in_the_run_that_spawned_a_child_drops_its_record(write_program, anthropic_env):
    fake = anthropic_env
    write_program(MODEL + '[prompt]\nsystem_prompt = "You are the expert."\n', "expert.toml")
    lead = MODEL + '[tools]\nbuiltin = ["spawn", "goto"]\n[linked_programs]\nexpert = "expert.toml"\n'
    process = LLMProcess.from_toml(write_program(lead, "lead.toml"))

    def respond(view: Any, body: Any) -> Turn | None:
        """The expert answers; the lead spawns it once per run, and in the second run goes back
        to before that run's own message once the expert has answered."""
        if "You are the expert." in system_text(body):
            return Turn(text="It is 4711.")
        again = next(
            (found for m in body["messages"] if (found := re.match(r"\[(msg-\d+)\] Ask again", text_of(m)))),
            None,
        )
        if not view.last_is_tool_result:
            if "Start over" in view.last_user_text:
                return Turn(text="Over.")
            return call("spawn", program_name="expert", prompt="the code?")
        if again is None:
            return Turn(text="First done.")
        return call("goto", position=again.group(1), message="Start over without asking.")

    fake.responder = respond
    await process.run("Ask once.")
    (kept,) = process.child_records

    result = await process.run("Ask again, then start over.")
    assert result.text == "Over."
    shown = [m.text.split("] ", 1)[-1] for m in process.messages]
    assert shown[4:] == ["Start over without asking.", "Over."]
    (taken_back,) = result.children  # it ran, and its cost counts
    assert taken_back.process_id != kept.process_id
    assert process.child_records == (kept,)  # but its call left the history, and so its record


async def test_spawn_asks_a_linked_program_and_returns_its_answer(linked, anthropic_env):
    fake = anthropic_env
    process = linked()
    fake.push(call("spawn", program_name="expert", prompt="What is the launch code?"))
    by_system_prompt(fake, {"You are the expert.": "It is 4711."})
    fake.push()  # the parent's final turn comes from auto mode: "done: <tool result>"
    result = await process.run("Ask the expert for the code.")

    assert result.text == "done: It is 4711."
    assert result.tool_calls[0].name == "spawn"
    assert result.tool_calls[0].result == "It is 4711."
    expert_request = next(r.body for r in fake.requests if "You are the expert." in system_text(r.body))
    assert "The launch code is 4711." in system_text(expert_request)  # the child's preloaded file
    assert [(m["role"], text_of(m)) for m in expert_request["messages"]] == [
        ("user", "What is the launch code?")
    ]
    # the spawn tool tells the model which programs it can ask
    spawn_tool = next(t for t in fake.requests[0].body["tools"] if t["name"] == "spawn")
    assert spawn_tool["input_schema"]["properties"]["program_name"]["enum"] == ["critic", "expert"]
    assert "- expert: Knows the notes." in spawn_tool["description"]
    # usage and cost of the run include the child's
    assert result.usage.input_tokens == 3 * 10
    assert process.usage.input_tokens == 3 * 10


async def test_several_spawns_in_one_turn_run_concurrently(linked, anthropic_env):
    fake = anthropic_env
    fake.latency = 0.3
    process = linked()
    fake.push(
        Turn(
            tool_calls=(
                ScriptedToolCall("spawn", {"program_name": "expert", "prompt": "code?"}),
                ScriptedToolCall("spawn", {"program_name": "critic", "prompt": "opinion?"}),
            )
        )
    )
    by_system_prompt(fake, {"You are the expert.": "4711", "You are the critic.": "fine"})
    result = await process.run("Ask both.")
    assert [c.result for c in result.tool_calls] == ["4711", "fine"]  # in the order of the calls
    assert fake.max_in_flight == 2  # both children's requests were at the server at once


async def test_spawn_of_an_unknown_program_is_an_error_result(linked, anthropic_env):
    fake = anthropic_env
    process = linked()
    fake.push(call("spawn", program_name="oracle", prompt="hi"), Turn(text="ok"))
    result = await process.run("go")
    assert result.tool_calls[0].is_error
    assert result.tool_calls[0].result == "unknown program 'oracle'; linked programs: critic, expert"


async def test_a_child_that_fails_becomes_an_error_result_and_the_parent_goes_on(
    linked, anthropic_env, write_program
):
    fake = anthropic_env
    write_program('[model]\nname = "x"\nprovider = "anthropic"\nmax_retries = 0\n', "broken.toml")
    process = linked('[linked_programs.broken]\npath = "broken.toml"\n')
    fake.push(call("spawn", program_name="broken", prompt="hi"))
    from fake_provider import Fault

    fake.push(Fault(status=400, error_type="invalid_request_error", message="model: x does not exist"))
    fake.push(Turn(text="The helper failed; answering myself."))
    result = await process.run("go")
    assert result.text == "The helper failed; answering myself."
    assert result.tool_calls[0].is_error
    assert result.tool_calls[0].result.startswith("broken failed: ")
    assert "model: x does not exist" in result.tool_calls[0].result


async def test_spawn_depth_limit_stops_recursion(write_program, anthropic_env):
    fake = anthropic_env
    path = write_program(
        MODEL
        + '[tools]\nbuiltin = ["spawn"]\n[linked_programs]\nself = "loop.toml"\n[limits]\nmax_depth = 2\n',
        "loop.toml",
    )
    # every process asks itself again until the kernel says no
    fake.responder = lambda view, body: (
        Turn(text=f"bottom: {view.last_tool_result_text}")
        if view.last_is_tool_result
        else call("spawn", program_name="self", prompt="deeper")
    )
    result = await LLMProcess.from_toml(path).run("start")
    spawned = [r.body for r in fake.requests if text_of(r.body["messages"][0]) == "deeper"]
    assert len([b for b in spawned if len(b["messages"]) == 1]) == 2  # depth 1 and depth 2 started
    assert "limit reached: processes may nest 2 deep" in json.dumps([r.body for r in fake.requests])
    assert result.text.startswith("bottom: bottom: ")


# -- fork ------------------------------------------------------------------------------------------


def fork_program(write_program: Any, limits: str = "") -> LLMProcess:
    return LLMProcess.from_toml(write_program(MODEL + '[tools]\nbuiltin = ["fork"]\n' + limits))


def answer_fork_tasks(fake: FakeProviderServer) -> None:
    def respond(view: Any, body: Any) -> Turn | None:
        task = re.search(r"Your task: (.*)", view.last_tool_result_text)
        if task:  # a fork child: it answers its own task
            return Turn(text=f"finished {task.group(1)}")
        return None

    fake.responder = respond


async def test_fork_runs_one_child_per_prompt_from_the_current_state(write_program, anthropic_env):
    fake = anthropic_env
    fake.latency = 0.3
    process = fork_program(write_program)
    await_first = Turn(text="I know the context: the secret is 42.")
    fake.push(await_first)
    await process.run("Remember: the secret is 42.")
    fake.push(call("fork", prompts=["part A", "part B"]))
    answer_fork_tasks(fake)
    fake.push()
    result = await process.run("Split the work.")

    fork_result = result.tool_calls[0].result
    assert '<fork_result child="1" task="part A">\nfinished part A\n</fork_result>' in fork_result
    assert '<fork_result child="2" task="part B">\nfinished part B\n</fork_result>' in fork_result
    assert fake.max_in_flight == 2
    children = [r.body for r in fake.requests if "Your task:" in json.dumps(r.body["messages"][-1])]
    assert len(children) == 2
    for body in children:  # each child saw the parent's whole conversation
        assert text_of(body["messages"][0]) == "Remember: the secret is 42."
        assert text_of(body["messages"][1]) == "I know the context: the secret is 42."
    # the parent's history has one result for the fork call; the children left no trace in it
    assert [m.role for m in process.messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]


async def test_fork_children_can_not_fork_beyond_the_depth_limit(write_program, anthropic_env):
    fake = anthropic_env
    process = fork_program(write_program, "[limits]\nmax_depth = 1\n")

    def respond(view: Any, body: Any) -> Turn | None:
        if "Your task:" in view.last_tool_result_text:
            return call("fork", prompts=["deeper"])  # the child tries to fork again
        return None

    fake.responder = respond
    fake.push(call("fork", prompts=["one"]))
    result = await process.run("go")
    child_fork = next(r.body for r in fake.requests if "limit reached" in json.dumps(r.body["messages"][-1]))
    assert "processes may nest 1 deep and this one is at depth 1" in result_text(tool_results(child_fork)[-1])
    assert "finished" not in result.text


async def test_too_many_children_in_one_turn_is_an_error_result(write_program, anthropic_env):
    fake = anthropic_env
    process = fork_program(write_program, "[limits]\nmax_children_per_turn = 2\n")
    fake.push(call("fork", prompts=["a", "b", "c"]), Turn(text="ok"))
    result = await process.run("go")
    assert result.tool_calls[0].is_error
    assert result.tool_calls[0].result == (
        "limit reached: at most 2 child processes per model turn (0 started already, 3 asked for)"
    )
    assert len(fake.requests) == 2  # no child ever asked the model


async def test_python_fork_is_an_independent_copy(write_program, anthropic_env):
    fake = anthropic_env
    process = fork_program(write_program)
    fake.push(Turn(text="noted"))
    await process.run("the colour is blue")
    copy = process.fork()
    assert copy.messages == process.messages
    assert copy.messages[0] is process.messages[0]  # shared, immutable
    fake.push(Turn(text="copy answer"), Turn(text="original answer"))
    await copy.run("in the copy")
    await process.run("in the original")
    assert [m.text for m in copy.messages][-2:] == ["in the copy", "copy answer"]
    assert [m.text for m in process.messages][-2:] == ["in the original", "original answer"]
    assert copy.parent_id == process.id and copy.id != process.id


# -- goto ------------------------------------------------------------------------------------------


async def test_goto_goes_back_to_an_earlier_message_with_a_new_one(write_program, anthropic_env):
    fake = anthropic_env
    process = LLMProcess.from_toml(write_program(MODEL + '[tools]\nbuiltin = ["goto"]\n'))
    fake.push(Turn(text="Paris."), Turn(text="A long detour about cheese."))
    await process.run("What is the capital of France?")
    await process.run("Tell me everything about cheese.")
    sent = fake.requests[-1].body["messages"]
    first_id = re.match(r"\[(msg-\d+)\] ", text_of(sent[0])).group(1)  # ids are shown to the model
    detour_id = re.match(r"\[(msg-\d+)\] ", text_of(sent[2])).group(1)
    assert first_id == process.messages[0].id and detour_id == process.messages[2].id

    fake.push(
        call("goto", position=detour_id, message="Summary: cheese is varied. Now: capital of Italy?"),
        Turn(text="Rome."),
    )
    result = await process.run("Please clean up and ask about Italy.")
    assert result.text == "Rome."
    assert result.tool_calls[0].result.startswith(f"Going back to before {detour_id}: 4 messages are removed")
    after = fake.requests[-1].body["messages"]
    assert [m["role"] for m in after] == ["user", "assistant", "user"]
    assert text_of(after[2]).endswith("] Summary: cheese is varied. Now: capital of Italy?")
    assert "cheese" not in json.dumps(after[:2])
    assert [m.text.split("] ", 1)[-1] for m in process.messages] == [
        "What is the capital of France?",
        "Paris.",
        "Summary: cheese is varied. Now: capital of Italy?",
        "Rome.",
    ]


async def test_goto_to_an_unknown_or_non_user_message_is_an_error_result(write_program, anthropic_env):
    fake = anthropic_env
    process = LLMProcess.from_toml(write_program(MODEL + '[tools]\nbuiltin = ["goto"]\n'))
    fake.push(Turn(text="hi"))
    await process.run("hello")
    assistant_id = process.messages[1].id
    fake.push(
        Turn(
            tool_calls=(
                ScriptedToolCall("goto", {"position": "msg-999999", "message": "x"}),
                ScriptedToolCall("goto", {"position": assistant_id, "message": "x"}),
            )
        ),
        Turn(text="ok"),
    )
    result = await process.run("go")
    assert [c.is_error for c in result.tool_calls] == [True, True]
    assert "no message 'msg-999999'" in result.tool_calls[0].result
    assert "is not a user message" in result.tool_calls[1].result
    assert len(process.messages) == 6


async def test_goto_from_python(write_program, anthropic_env):
    fake = anthropic_env
    process = LLMProcess.from_toml(write_program(MODEL))
    fake.push(Turn(text="one"), Turn(text="two"))
    await process.run("first")
    await process.run("second")
    removed = process.goto(process.messages[2].id)
    assert [m.text for m in removed] == ["second", "two"]
    assert [m.text for m in process.messages] == ["first", "one"]
    with pytest.raises(ProcessError, match="is not a user message"):
        process.goto(process.messages[1].id)
    with pytest.raises(ProcessError, match="no message 'msg-0'"):
        process.goto("msg-0")


# -- limits ----------------------------------------------------------------------------------------


async def test_cost_budget_stops_a_process_tree(linked, anthropic_env):
    fake = anthropic_env
    process = linked("[limits]\ncost_budget_usd = 0.00001\n")  # haiku: $1/M input, $5/M output
    usage = dict(input_tokens=10_000, output_tokens=0)
    from fake_provider import TurnUsage

    fake.push(
        Turn(
            tool_calls=(ScriptedToolCall("spawn", {"program_name": "expert", "prompt": "code?"}),),
            usage=TurnUsage(**usage),
        )
    )
    result = await process.run("go")
    assert result.stop_reason == "cost_budget"
    assert result.tool_calls[0].is_error
    assert "cost budget of $1e-05 for this process tree is spent" in result.tool_calls[0].result
    assert len(fake.requests) == 1  # neither the child nor a second parent turn asked the model
    with pytest.raises(ProcessError, match="cost budget of \\$1e-05 for this process tree is spent"):
        await process.run("again")


async def test_a_child_never_gets_more_access_than_its_parent(write_program, anthropic_env, tmp_path):
    fake = anthropic_env
    write_program(
        MODEL + '[tools]\nbuiltin = ["read_file", "fd_to_file"]\n[limits]\nmax_access = "admin"\n',
        "writer.toml",
    )
    main = LLMProcess.from_toml(
        write_program(
            MODEL
            + '[tools]\nbuiltin = ["spawn", "read_file", "fd_to_file"]\n'
            + '[linked_programs]\nwriter = "writer.toml"\n[limits]\nmax_access = "read"\n',
            "main.toml",
        )
    )
    assert {s.name for s in await main.tool_specs()} == {"spawn", "read_file", "read_fd"}
    fake.push(call("spawn", program_name="writer", prompt="write"), Turn(text="child"), Turn(text="done"))
    await main.run("go")
    child_tools = {t["name"] for t in fake.requests[1].body["tools"]}
    assert child_tools == {"read_file", "read_fd"}  # fd_to_file (write) withheld from the child too


def test_spawn_without_linked_programs_is_a_load_error(write_program):
    from llmproc import ProgramError

    with pytest.raises(ProgramError, match=r"builtin includes 'spawn' but \[linked_programs\] is empty"):
        LLMProgram.from_toml(write_program(MODEL + '[tools]\nbuiltin = ["spawn"]\n'))


# -- descriptors across processes, aliases, cancellation ------------------------------------------


def long_text() -> str:
    return "\n".join(f"row {n}" for n in range(1, 3001))


async def test_spawn_hands_descriptors_to_a_child_and_fork_copies_inherit_them(write_program, anthropic_env):
    fake = anthropic_env
    fd_section = "[file_descriptor]\nenabled = true\nmax_direct_output_chars = 1000\n"
    write_program(MODEL + '[prompt]\nsystem_prompt = "You are the reader."\n' + fd_section, "reader.toml")
    program = LLMProgram.from_toml(
        write_program(
            MODEL
            + '[tools]\nbuiltin = ["spawn", "fork"]\n[linked_programs]\nreader = "reader.toml"\n'
            + fd_section,
            "main.toml",
        )
    )
    main = LLMProcess(program.add_tool(long_text))

    def respond(view: Any, body: Any) -> Turn | None:
        last = view.last_tool_result_text
        if "You are the reader." in system_text(body):
            return (
                None
                if view.last_is_tool_result
                else call("read_fd", fd="fd:1", mode="lines", start=2999, count=2)
            )
        if "Your task:" in last:  # the fork copy
            return call("read_fd", fd="fd:1", mode="lines", start=1, count=1)
        if not view.last_is_tool_result:
            return call("long_text")
        if "stored as fd:1" in last:
            return call("spawn", program_name="reader", prompt="Read the end of fd:1.", fds=["fd:1"])
        if last.startswith("done: [fd:1") and "row 3000" in last:
            return call("fork", prompts=["Read the start of fd:1."])
        return None  # auto mode: "done: <last result>"

    fake.responder = respond
    result = await main.run("go")
    stored, spawned, forked = result.tool_calls[:3]
    assert "it is stored as fd:1" in stored.result
    assert spawned.result.startswith(
        "done: [fd:1 (The result of long_text): lines 2999-3000 of 3000]\nrow 2999\nrow 3000"
    )
    assert "lines 1-1 of 3000]\nrow 1\n" in forked.result
    reader_first = next(r.body for r in fake.requests if "You are the reader." in system_text(r.body))
    assert "Descriptors handed to you:\nfd:1 (" in text_of(reader_first["messages"][0])


async def test_tool_aliases(write_program, anthropic_env):
    fake = anthropic_env
    process = LLMProcess.from_toml(
        write_program(MODEL + '[tools]\nbuiltin = ["calculator"]\n[tools.aliases]\ncalc = "calculator"\n')
    )
    assert [s.name for s in await process.tool_specs()] == ["calc"]
    fake.push(call("calc", expression="6*7"), Turn(text="42"))
    result = await process.run("6*7?")
    assert result.tool_calls[0].result == "42"
    broken = LLMProcess.from_toml(write_program(MODEL + '[tools.aliases]\nx = "nothing"\n', "broken.toml"))
    with pytest.raises(ProcessError, match="aliases name tools this program does not have: nothing"):
        await broken.tool_specs()


async def test_cancelling_a_run_cancels_its_children_and_keeps_the_history(linked, anthropic_env):
    import asyncio
    import threading
    import time

    fake = anthropic_env
    process = linked()
    fake.push(Turn(text="first answer"))
    await process.run("first")
    before = process.messages
    fake.push(call("spawn", program_name="expert", prompt="slow question"))
    fake.latency = 0.0

    child_asked = threading.Event()

    def slow_expert(view: Any, body: Any) -> Turn | None:
        if "You are the expert." in system_text(body):
            child_asked.set()
            time.sleep(5)  # the child's request hangs
            return Turn(text="too late")
        return None

    fake.responder = slow_expert
    run = asyncio.ensure_future(process.run("second"))
    assert await asyncio.to_thread(child_asked.wait, 60)  # cancelled while the child waits
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert process.messages == before
    fake.push(Turn(text="third answer"))
    assert (await process.run("third")).text == "third answer"
