"""`llmproc` driven as a user would: a subprocess, against the fake provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fake_provider import Fault, Turn

SCRIPTED = '[model]\nname = "s"\nprovider = "scripted"\n[prompt]\nuser = "from the program"\n'


def llmproc(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmproc.cli.run", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_prompt_argument_prints_the_reply(write_program):
    done = llmproc(str(write_program(SCRIPTED)), "echo me")
    assert (done.returncode, done.stdout) == (0, "echo me\n")


def test_prompt_from_piped_stdin(write_program):
    done = llmproc(str(write_program(SCRIPTED)), stdin="from stdin\n")
    assert done.stdout == "from stdin\n"


def test_program_user_prompt_when_no_prompt_is_given(write_program):
    done = llmproc(str(write_program(SCRIPTED)), stdin="")
    assert done.stdout == "from the program\n"


def test_no_prompt_anywhere_is_a_usage_error(write_program):
    done = llmproc(str(write_program('[model]\nname = "s"\nprovider = "scripted"\n')), stdin="")
    assert done.returncode == 2
    assert "no prompt" in done.stderr


def test_json_output_is_the_run_result(write_program):
    done = llmproc(str(write_program(SCRIPTED)), "-p", "hi", "--json")
    result = json.loads(done.stdout)
    assert result["text"] == "hi"
    assert set(result) >= {"process_id", "usage", "cost_usd", "tool_calls", "stop_reason", "program"}


def test_program_error_exits_3_without_a_traceback(write_program):
    done = llmproc(str(write_program('[model]\nname = "s"\nprovider = "scriptd"\n')), "hi")
    assert done.returncode == 3
    assert "did you mean 'scripted'?" in done.stderr
    assert "Traceback" not in done.stderr


def test_provider_error_exits_1_with_one_line(fake, write_program):
    fake.push(Fault(status=400, error_type="invalid_request_error", message="bad request"))
    path = write_program('[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\n')
    done = llmproc(str(path), "hi", env={"ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.url})
    assert done.returncode == 1
    assert (
        done.stderr.strip() == "llmproc: error: Anthropic API error 400 (invalid_request_error): bad request"
    )


def test_missing_api_key_names_the_variable(write_program):
    path = write_program('[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.run", str(path), "hi"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert "set the environment variable ANTHROPIC_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr


def test_real_provider_reply_over_the_wire(fake, write_program):
    fake.push(Turn(text="Hello from the fake Claude."))
    path = write_program('[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n')
    done = llmproc(str(path), "hi", env={"ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.url})
    assert done.stdout == "Hello from the fake Claude.\n"


def test_an_mcp_server_that_can_not_start_is_one_line_and_exit_code_4(write_program):
    program = SCRIPTED + '[mcp.servers.ghost]\ncommand = "no-such-mcp-server-binary"\n'
    done = llmproc(str(write_program(program)), "hi")
    assert done.returncode == 4
    assert done.stderr == (
        "llmproc: error: MCP server 'ghost' (command: no-such-mcp-server-binary) failed to start: "
        "command not found: no-such-mcp-server-binary; install it (its package, with pip or npm) or give "
        "the program's [mcp] server command as a full path\n"
    )
    assert done.stdout == ""


def test_mcp_tools_through_the_cli_and_the_server_stops_with_it(write_program, tmp_path):
    toolbox = os.path.join(os.path.dirname(__file__), "..", "mcp_servers", "toolbox.py")
    program = (
        '[model]\nname = "s"\nprovider = "scripted"\n'
        '[scripted]\nreplies = [{tool_calls = [{name = "toolbox__server_pid"}]}, "pid noted"]\n'
        f"[mcp.servers.toolbox]\ncommand = {json.dumps(sys.executable)}\nargs = [{json.dumps(toolbox)}]\n"
    )
    done = llmproc(str(write_program(program)), "--json", "go")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["text"] == "pid noted"
    pid = int(result["tool_calls"][0]["result"])
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            alive = "Z" not in stat.read().split()[2]
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive  # the CLI closed the process, which stopped its server


def test_save_and_resume_continue_one_conversation(write_program, tmp_path):
    program = write_program(
        '[model]\nname = "s"\nprovider = "scripted"\n[scripted]\nreplies = ["one", "two", "three"]\n'
    )
    state = tmp_path / "chat.json"
    assert llmproc(str(program), "first", "--save", str(state)).stdout == "one\n"
    assert llmproc("--resume", str(state), "second", "--save", str(state)).stdout == "two\n"
    done = llmproc("--resume", str(state), "--json", "third")
    result = json.loads(done.stdout)
    assert result["text"] == "three"
    saved = json.loads(state.read_text())
    assert [m["content"][0]["text"] for m in saved["messages"]] == ["first", "one", "second", "two"]
    assert result["process_id"] == saved["process_id"]  # the same process, continued


def test_resume_problems_are_one_line_and_exit_3(write_program, tmp_path):
    done = llmproc("--resume", str(tmp_path / "missing.json"), "hi")
    assert (done.returncode, done.stderr) == (
        3,
        f"llmproc: error: snapshot file {tmp_path}/missing.json not found\n",
    )
    state = tmp_path / "s.json"
    llmproc(str(write_program(SCRIPTED)), "hi", "--save", str(state))
    other = write_program('[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n', "other.toml")
    done = llmproc(str(other), "--resume", str(state), "hi")
    assert done.returncode == 3
    assert "made with provider 'scripted' and the program uses 'anthropic'" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_front_end_reports_the_installed_version():
    from importlib.metadata import version

    import llmproc as package

    assert package.__version__ == version("llmproc")  # the code and the installed metadata agree
    for module, name in (("run", "llmproc"), ("mcp", "llmproc-mcp"), ("demo", "llmproc-demo")):
        done = subprocess.run(
            [sys.executable, "-m", f"llmproc.cli.{module}", "--version"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert (done.returncode, done.stdout) == (0, f"{name} {package.__version__}\n"), done.stderr


ROOT = Path(__file__).resolve().parents[2]


def test_init_writes_starter_programs_that_run_from_any_directory(tmp_path):
    """An installed package has no programs/ beside it: `llmproc programs/scripted.toml`,
    `llmproc-demo` and `llmproc-mcp --programs programs` failed outside the repository."""
    wrote = llmproc("init", cwd=tmp_path)
    assert wrote.returncode == 0, wrote.stderr
    assert wrote.stdout.startswith(f"wrote 4 programs to {tmp_path / 'programs'}: gemini.toml, minimal.toml")
    assert 'llmproc programs/scripted.toml "Hello"' in wrote.stdout
    for name in ("scripted", "minimal", "openai", "gemini"):  # the repository's own, unchanged
        written = (tmp_path / "programs" / f"{name}.toml").read_text()
        assert written == (ROOT / "programs" / f"{name}.toml").read_text()
    reply = llmproc("programs/scripted.toml", "Hello", cwd=tmp_path)
    assert reply.returncode == 0 and reply.stdout.startswith("Hello! I am a scripted model"), reply.stderr
    again = llmproc("init", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"llmproc: error: {tmp_path / 'programs'} already has gemini.toml, minimal.toml, openai.toml, "
        "scripted.toml; pass --force to overwrite"
    )
    (tmp_path / "programs" / "scripted.toml").write_text("edited")
    assert llmproc("init", "--force", cwd=tmp_path).returncode == 0
    assert (tmp_path / "programs" / "scripted.toml").read_text().startswith("# Runs with no API key")
    assert llmproc("init", "elsewhere/mine", cwd=tmp_path).returncode == 0
    assert (tmp_path / "elsewhere" / "mine" / "gemini.toml").exists()


def test_the_wheel_carries_the_starter_programs(tmp_path):
    import zipfile

    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("llmproc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"llmproc/starter/{n}.toml" for n in ("scripted", "minimal", "openai", "gemini")} <= names
