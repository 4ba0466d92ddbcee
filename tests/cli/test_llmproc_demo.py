"""`llmproc-demo` driven through a pseudo-terminal, as a user would, against the fake provider."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fake_provider import Fault, ScriptedToolCall, Turn
from terminal import Terminal

CLAUDE = """\
[model]
name = "claude-haiku-4-5"
provider = "anthropic"
display_name = "Calculating Claude"

[prompt]
system_prompt = "You add numbers."

[tools]
builtin = ["calculator"]
"""

COST_LINE = r"\[[\d,]+ in · [\d,]+ out · \$[\d.]+[^\]]*\]"  # printed after every reply

SCRIPTED = """\
[model]
name = "s"
provider = "scripted"

[scripted]
replies = ["first scripted reply", "second scripted reply", "third scripted reply"]

[demo]
display_name = "Offline demo"
prompts = ["one", "two"]
"""


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    root = tmp_path / "programs"
    root.mkdir()
    (root / "claude.toml").write_text(CLAUDE)
    (root / "offline.toml").write_text(SCRIPTED)
    (root / "broken.toml").write_text('[model]\nname = "x"\nprovider = "nope"\n')
    return root


@pytest.fixture
def demo(fake, tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    terminals: list[Terminal] = []

    def start(*args: str, without: tuple[str, ...] = ()) -> Terminal:
        env = {
            **os.environ,
            "ANTHROPIC_API_KEY": fake.api_key,
            "ANTHROPIC_BASE_URL": fake.url,
            "TERM": "xterm-256color",
            "PROMPT_TOOLKIT_NO_CPR": "1",
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "COLUMNS": "100",
        }
        for name in without:
            env.pop(name)
        terminal = Terminal([sys.executable, "-m", "llmproc.cli.demo", *args], env=env, cwd=str(tmp_path))
        terminals.append(terminal)
        return terminal

    yield start
    for terminal in terminals:
        terminal.close()


def test_pick_by_number_chat_with_tool_calls_reset_and_quit(demo, fake, programs, tmp_path):
    fake.push(
        Turn(tool_calls=(ScriptedToolCall("calculator", {"expression": "19 + 23"}),)),
        Turn(text="The sum is 42."),
        Turn(text="Fresh start."),
    )
    term = demo("--programs", str(programs))
    listing = term.expect(r"Pick a program \[1-3, q to quit\]:")
    assert "Calculating Claude" in listing and "Offline demo" in listing
    assert "(does not load)" in listing  # broken.toml is listed with the reason it can not run

    term.line("9")
    term.expect(r"Type a number from 1 to 3")
    term.line("2")  # broken.toml sorts first: 1 broken, 2 claude, 3 offline
    term.expect(r"Calculating Claude")
    term.expect(r"you>")

    term.line("What is 19 + 23?")
    shown = term.expect(COST_LINE)
    assert "⚙ calculator" in shown and "19 + 23" in shown  # the tool call, with its arguments
    assert "result" in shown and "42" in shown  # its short result
    assert "The sum is 42." in shown
    assert "$" in shown and "tool call(s)" in shown  # cost of the turn

    term.line("reset")
    term.expect(r"conversation cleared")
    term.line("hello again")
    assert "Fresh start." in term.expect(COST_LINE)
    after_reset = fake.bodies("/v1/messages")[-1]["messages"]
    assert [m["role"] for m in after_reset] == ["user"]  # the old conversation is gone

    term.line("quit")
    assert term.wait() == 0


def test_ctrl_c_cancels_the_reply_and_keeps_the_session(demo, fake, programs):
    fake.push(Fault(hang=8, status=500), Turn(text="Answer after the cancel."))
    term = demo(str(programs / "claude.toml"))
    term.expect(r"you>")
    term.line("a slow question")
    while not fake.requests:  # the request is at the provider
        term._read(0.05)
    term.type("\x03")
    term.expect(r"reply cancelled")
    term.expect(r"you>")
    term.line("a quick question")
    assert "Answer after the cancel." in term.expect(COST_LINE)
    messages = fake.bodies("/v1/messages")[-1]["messages"]
    assert len(messages) == 1 and "a quick question" in str(messages[0])  # the cancelled turn left nothing
    term.line("exit")
    assert term.wait() == 0


def test_demo_prompts_play_in_order_and_eof_leaves(demo, programs):
    term = demo(str(programs / "offline.toml"))
    term.expect(r"Type 'demo' to play its 2 demo prompts")
    term.expect(r"you>")
    term.line("demo")
    term.expect(r"first scripted reply")
    term.expect(r"\[Enter for the next prompt\]")
    term.line("")
    term.expect(r"second scripted reply")
    term.expect(r"you>")
    term.type("\x04")  # Ctrl-D
    assert term.wait() == 0


def test_a_missing_api_key_is_one_readable_line_and_the_session_goes_on(demo, programs):
    term = demo(str(programs / "claude.toml"), without=("ANTHROPIC_API_KEY",))
    term.expect(r"you>")
    term.line("hi")
    term.expect(r"error: provider 'anthropic' needs an API key: set the environment variable\s+ANTHROPIC_API")
    term.line("reset")
    term.expect(r"conversation cleared")  # still chatting
    term.line("quit")
    assert term.wait() == 0
    assert "Traceback" not in term.text


def test_a_program_that_does_not_load_exits_3(demo, programs):
    term = demo(str(programs / "broken.toml"))
    shown = term.expect(r"provider")
    assert term.wait() == 3
    assert "Traceback" not in term.text, shown


def test_demo_without_demo_prompts_is_a_command_not_a_message(demo, fake, programs):
    term = demo(str(programs / "claude.toml"))
    term.expect(r"'demo' to play the program's\s+\[demo\] prompts")  # help names it
    term.expect(r"you>")
    term.line("demo")
    term.expect(r"this program has no \[demo\] prompts")
    term.expect(r"you>")
    term.line("quit")
    assert term.wait() == 0
    assert fake.requests == []  # nothing was sent to the model


def test_one_demo_prompt_is_counted_in_the_singular(demo, tmp_path):
    (tmp_path / "single.toml").write_text(SCRIPTED.replace('prompts = ["one", "two"]', 'prompts = ["one"]'))
    term = demo(str(tmp_path / "single.toml"))
    term.expect(r"Type 'demo' to play its 1 demo prompt\.")
    term.line("quit")
    assert term.wait() == 0


def test_errors_go_to_stderr_whole_when_it_is_not_a_terminal(tmp_path):
    """rich wrapped them at 80 columns mid-sentence in a log or a pipe."""
    import subprocess

    long_name = tmp_path / ("a-directory-with-a-rather-long-name-" * 3)
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.demo", "--programs", str(long_name)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"llmproc-demo: error: no programs directory '{long_name}'; pass a program or --programs DIR "
        "(llmproc init writes one)\n"
    )
