"""Snapshots: a versioned JSON document that restores a process exactly, and refuses clearly."""

from __future__ import annotations

import json
import logging

import pytest

from llmproc import LLMProcess, LLMProgram, SnapshotError
from llmproc.messages import Message, ThinkingBlock

SCRIPTED = """\
[model]
name = "s"
provider = "scripted"

[tools]
builtin = ["goto", "read_fd"]

[file_descriptor]
max_direct_output_chars = 100
page_user_input = true
max_input_chars = 100
"""


@pytest.fixture
def process(write_program) -> LLMProcess:
    return LLMProcess.from_toml(write_program(SCRIPTED))


async def test_save_and_load_continue_the_conversation(process, tmp_path):
    await process.run("first")
    await process.run("x" * 500)  # long input becomes a file descriptor
    path = process.save(tmp_path / "state.json")
    loaded = LLMProcess.load(path)
    assert loaded.id == process.id
    assert loaded.messages == process.messages
    assert (loaded.usage, loaded.cost_usd) == (process.usage, process.cost_usd)
    assert loaded.fds is not None and loaded.fds.text("fd:1") == "x" * 500
    result = await loaded.run("third")
    assert result.text.endswith("third")  # the scripted model echoes
    assert len(loaded.messages) == len(process.messages) + 2
    assert loaded.fds.store("more", source="test") == "fd:2"  # descriptor names never repeat


async def test_message_ids_continue_after_the_restored_ones(process):
    await process.run("hello")
    document = process.snapshot()
    document["messages"][0]["id"] = "msg-900000"
    restored = LLMProcess.restore(document)
    await restored.run("again")
    ids = [int(m.id.removeprefix("msg-")) for m in restored.messages]
    assert len(set(ids)) == len(ids) and min(ids[2:]) > 900000
    restored.goto("msg-900000")  # goto works with restored ids
    assert restored.messages == ()


def test_snapshot_is_plain_json_with_a_version(process):
    process.run("hello")
    document = process.snapshot()
    assert json.loads(json.dumps(document)) == document
    assert (document["format"], document["version"]) == ("llmproc-snapshot", 1)
    assert document["program"]["path"].endswith("program.toml") and len(document["program"]["sha256"]) == 64


def test_a_newer_format_version_is_refused(process):
    document = {**process.snapshot(), "version": 2}
    with pytest.raises(SnapshotError, match="version 2 is newer than this llmproc reads"):
        LLMProcess.restore(document)


@pytest.mark.parametrize("document", [{}, {"format": "other"}, [], "text"])
def test_something_else_is_not_a_snapshot(document):
    with pytest.raises(SnapshotError, match="not an llmproc snapshot"):
        LLMProcess.restore(document)


def test_files_that_are_not_snapshots(tmp_path):
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(SnapshotError, match=r"bad.json is not a snapshot: invalid JSON at line 1"):
        LLMProcess.load(tmp_path / "bad.json")
    with pytest.raises(SnapshotError, match=r"snapshot file .*missing.json not found"):
        LLMProcess.load(tmp_path / "missing.json")


def test_another_provider_is_refused_unless_converting(process, write_program):
    process.run("hello")
    document = process.snapshot()
    document["messages"][1]["content"].insert(
        0, {"type": "thinking", "thinking": "t", "signature": "sig", "provider": "scripted"}
    )
    other = LLMProgram.from_toml(
        write_program('[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n', "claude.toml")
    )
    with pytest.raises(SnapshotError, match="made with provider 'scripted' and the program uses 'anthropic'"):
        LLMProcess.restore(document, other)
    converted = LLMProcess.restore(document, other, convert=True)
    assert not any(isinstance(b, ThinkingBlock) for m in converted.messages for b in m.content)
    assert [m.text for m in converted.messages] == [m.text for m in process.messages]


def test_a_changed_program_file_is_reported(process, write_program, caplog):
    process.run("hello")
    document = process.snapshot()
    write_program(SCRIPTED + '\n[prompt]\nsystem_prompt = "changed"\n')
    with caplog.at_level(logging.WARNING, logger="llmproc"):
        restored = LLMProcess.restore(document)
    assert restored.program_changed
    assert "changed since the snapshot" in caplog.text
    # the original process still runs the old text, so its snapshots still say so;
    # a process running the current file restores as unchanged
    assert LLMProcess.restore(process.snapshot()).program_changed
    assert not LLMProcess.restore(restored.snapshot()).program_changed


def test_a_program_built_in_python_must_be_passed():
    program = LLMProgram(model_name="s", provider="scripted")
    process = LLMProcess(program)
    process.run("hi")
    with pytest.raises(SnapshotError, match="built in Python"):
        LLMProcess.restore(process.snapshot())
    assert LLMProcess.restore(process.snapshot(), program).messages == process.messages


def test_a_malformed_message_is_a_snapshot_error(process):
    process.run("hi")
    document = process.snapshot()
    del document["messages"][0]["role"]
    with pytest.raises(SnapshotError, match="malformed"):
        LLMProcess.restore(document)


def test_every_block_kind_round_trips():
    from llmproc.messages import ImageBlock, TextBlock, ToolCallBlock, ToolResultBlock
    from llmproc.snapshot import message_from_json, message_to_json

    message = Message(
        "assistant",
        (
            ThinkingBlock("", signature="opaque", redacted=True, provider="anthropic"),
            TextBlock("look"),
            ToolCallBlock("c1", "view", {"path": "a.png", "nested": {"list": [1, 2]}}),
            ToolResultBlock("c1", (TextBlock("ok"), ImageBlock("aGk=", "image/png")), True, "view"),
        ),
        provider_data={"items": [{"type": "reasoning", "encrypted_content": "zzz"}]},
    )
    assert message_from_json(json.loads(json.dumps(message_to_json(message)))) == message
