"""Builtin tools: file tools confined to their roots, the calculator, file descriptors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmproc import LLMProcess, LLMProgram, ToolError
from llmproc.config import FileDescriptorConfig
from llmproc.messages import ToolCallBlock
from llmproc.tools.calculator import evaluate
from llmproc.tools.fd import FileDescriptors
from llmproc.tools.files import FileRoots


def tools_process(tmp_path: Path, builtin: list[str], **sections: str) -> LLMProcess:
    text = '[model]\nname = "t"\nprovider = "scripted"\n'
    text += f'[tools]\nbuiltin = {builtin!r}\nroots = ["files"]\n'.replace("'", '"')
    for name, body in sections.items():
        text += f"[{name}]\n{body}\n"
    path = tmp_path / "program.toml"
    path.write_text(text)
    return LLMProcess(LLMProgram.from_toml(path))


async def call(process: LLMProcess, name: str, **arguments: object) -> tuple[str, bool]:
    router = await process._tools.router(process)
    outcome = await router.call(ToolCallBlock("c1", name, arguments))
    return outcome.content[0].text, outcome.is_error  # type: ignore[union-attr]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    files = tmp_path / "files"
    (files / "docs").mkdir(parents=True)
    (files / "docs" / "guide.md").write_text("# Guide\nhello\n")
    (files / "data.bin").write_bytes(b"\x00\x01")
    (tmp_path / "secret.txt").write_text("top secret")
    os.symlink(tmp_path / "secret.txt", files / "escape.txt")
    os.symlink(files / "docs" / "guide.md", files / "inside.md")
    return tmp_path


async def test_read_file_and_list_dir_inside_the_roots(tree: Path):
    process = tools_process(tree, ["read_file", "list_dir"])
    assert await call(process, "read_file", path="docs/guide.md") == ("# Guide\nhello\n", False)
    assert await call(process, "read_file", path="inside.md") == ("# Guide\nhello\n", False)
    listing, is_error = await call(process, "list_dir")
    assert not is_error
    assert listing.splitlines() == [
        "docs/",
        "data.bin  (2 bytes)",
        "escape.txt  (link outside the allowed folders)",
        "inside.md  (14 bytes, link)",
    ]


@pytest.mark.parametrize("path", ["../secret.txt", "escape.txt", "/etc/passwd", "docs/../../secret.txt"])
async def test_paths_that_escape_the_roots_are_refused(tree: Path, path: str):
    process = tools_process(tree, ["read_file", "list_dir"])
    text, is_error = await call(process, "read_file", path=path)
    assert is_error
    assert text.startswith(f"access denied: '{path}' is outside the allowed folders")
    assert "top secret" not in text
    if path == "escape.txt":
        assert "(through a symbolic link)" in text


async def test_file_tool_errors_are_clear(tree: Path):
    process = tools_process(tree, ["read_file", "list_dir"])
    assert await call(process, "read_file", path="nope.txt") == ("file not found: nope.txt", True)
    assert await call(process, "read_file", path="docs") == ("'docs' is a folder; use list_dir", True)
    assert await call(process, "read_file", path="data.bin") == (
        "'data.bin' is a binary file, not text",
        True,
    )
    assert await call(process, "list_dir", path="docs/guide.md") == (
        "'docs/guide.md' is a file; use read_file",
        True,
    )


def test_roots_default_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    roots = FileRoots([Path.cwd()])
    assert roots.resolve("a/b.txt") == tmp_path.resolve() / "a" / "b.txt"
    with pytest.raises(ToolError, match="outside the allowed folders"):
        roots.resolve("..")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("2 ** 10", 1024),
        ("7 // 2", 3),
        ("sqrt(16)", 4.0),
        ("round(pi, 4)", 3.1416),
        ("factorial(5)", 120),
        ("1 < 2 < 3", True),
        ("-3 % 5", 2),
    ],
)
def test_calculator_evaluates(expression: str, value: object):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "not allowed in an expression"),
        ("(1).__class__", "not allowed in an expression"),
        ("1 / 0", "division by zero"),
        ("9 ** 99999999", "exponent 99999999 is too large"),
        ("factorial(100000)", "factorial argument is too large"),
        ("2 +", "invalid expression"),
        ("x + 1", "unknown name 'x'"),
        ("sqrt(-1)", "can not compute: math domain error"),
    ],
)
def test_calculator_refuses_what_it_can_not_compute_safely(expression: str, message: str):
    with pytest.raises(ToolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(expression)


async def test_calculator_tool(tmp_path: Path):
    (tmp_path / "files").mkdir()
    process = tools_process(tmp_path, ["calculator"])
    assert await call(process, "calculator", expression="6 * 7") == ("42", False)
    text, is_error = await call(process, "calculator", expression="1/0")
    assert (text, is_error) == ("division by zero", True)


# -- file descriptors ------------------------------------------------------------------------------

LINES = "\n".join(f"line {n:04d}" for n in range(1, 1001)) + "\n"  # 10,000 characters


def table(page_size: int = 1000) -> FileDescriptors:
    return FileDescriptors(FileDescriptorConfig(enabled=True, default_page_size=page_size))


def test_pages_break_at_lines_and_cover_the_text_exactly():
    fds = table()
    fd = fds.store(LINES, source="test")
    pages = []
    for page in range(1, 11):
        text = fds.read(fd, start=page)
        header, body = text.split("\n", 1)
        assert header == f"[{fd} (test): page {page} of 10]"
        pages.append(body[: body.rindex(f"[{fd}: ")])
    assert "".join(pages) == LINES
    assert all(p.endswith("\n") for p in pages)
    assert fds.read(fd, start=10).endswith(f"[{fd}: end]")
    assert fds.read(fd, start=1).endswith(f'[{fd}: more with read_fd(fd="{fd}", start=2)]')


def test_reading_by_lines_and_characters():
    fds = table()
    fd = fds.store(LINES, source="test")
    by_lines = fds.read(fd, mode="lines", start=998, count=5)
    assert by_lines.splitlines() == [
        f"[{fd} (test): lines 998-1000 of 1000]",
        "line 0998",
        "line 0999",
        "line 1000",
        f"[{fd}: end]",
    ]
    by_chars = fds.read(fd, mode="chars", start=10, count=9)
    assert by_chars.splitlines()[:2] == [f"[{fd} (test): characters 10-18 of 10000]", "line 0002"]
    with pytest.raises(ToolError, match="has pages 1 to 10; page 11 does not exist"):
        fds.read(fd, start=11)
    with pytest.raises(ToolError, match="unknown file descriptor 'fd:9'; open descriptors: fd:1"):
        fds.read("fd:9")


def test_references_become_descriptors():
    fds = table()
    names = fds.capture_references('Here: <ref id="plan">step 1\nstep 2</ref> and <ref id="x">y</ref>.')
    assert names == ["ref:plan", "ref:x"]
    assert fds.text("ref:plan") == "step 1\nstep 2"


async def test_long_tool_results_and_inputs_become_descriptors(tmp_path: Path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "big.txt").write_text(LINES)

    def script(messages):  # read the big file, then read page 2 of the descriptor, then stop
        turn = sum(1 for m in messages if m.role == "assistant")
        if turn == 0:
            return {"tool_calls": [{"name": "read_file", "arguments": {"path": "big.txt"}}]}
        if turn == 1:
            return {"tool_calls": [{"name": "read_fd", "arguments": {"fd": "fd:2", "start": 2}}]}
        return "done"

    text = '[model]\nname = "t"\nprovider = "scripted"\n[tools]\nbuiltin = ["read_file"]\nroots = ["files"]\n'
    text += "[file_descriptor]\nenabled = true\nmax_direct_output_chars = 2000\ndefault_page_size = 1000\n"
    text += "page_user_input = true\nmax_input_chars = 500\n"
    (tmp_path / "p.toml").write_text(text)
    program = LLMProgram.from_toml(tmp_path / "p.toml")
    program.scripted_function = script
    process = LLMProcess(program)
    result = await process.run("x" * 600)
    assert process.messages[0].text.startswith(
        "The user's message is 600 characters (1 line), too long to show at once; it is stored as fd:1"
    )
    first = result.tool_calls[0].result
    assert first.startswith(
        "The result of read_file is 10,000 characters (1,000 lines), too long to show at once;"
    )
    assert "it is stored as fd:2 (10 pages)" in first
    assert "line 0001" in first and "line 0101" not in first
    assert result.tool_calls[1].result.splitlines()[:2] == [
        "[fd:2 (The result of read_file): page 2 of 10]",
        "line 0101",
    ]


# -- what is not a regular file ------------------------------------------------------------------


def special_tree(tmp_path: Path) -> Path:
    import socket

    files = tmp_path / "files"
    files.mkdir()
    os.mkfifo(files / "pipe")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(files / "sock"))
    listener.close()
    (files / "big.txt").write_bytes(b"a" * (10_000_000 + 1))
    return tmp_path


async def test_read_file_refuses_what_is_not_a_regular_file_before_opening_it(tmp_path: Path):
    process = tools_process(special_tree(tmp_path), ["read_file", "list_dir"])
    assert await call(process, "read_file", path="pipe") == (
        "'pipe' is not a regular file (a named pipe); read_file reads files only",
        True,
    )  # answered at once: opening a FIFO with no writer would block the tool forever
    assert await call(process, "read_file", path="sock") == (
        "'sock' is not a regular file (a socket); read_file reads files only",
        True,
    )
    assert await call(process, "read_file", path="big.txt") == (
        "'big.txt' is too large to read (more than 10,000,000 bytes)",
        True,
    )
    listing, _ = await call(process, "list_dir")
    assert listing.splitlines() == ["big.txt  (10,000,001 bytes)", "pipe  (a named pipe)", "sock  (a socket)"]


async def test_a_root_over_dev_reads_no_device(tmp_path: Path):
    """/dev/zero reports size 0 and never ends: trusting st_size read it until MemoryError."""
    program = tmp_path / "program.toml"
    program.write_text(
        '[model]\nname = "t"\nprovider = "scripted"\n[tools]\nbuiltin = ["read_file", "list_dir"]\n'
        'roots = ["/dev"]\n'
    )
    process = LLMProcess(LLMProgram.from_toml(program))
    assert await call(process, "read_file", path="/dev/zero") == (
        "'/dev/zero' is not a regular file (a character device); read_file reads files only",
        True,
    )
    listing, is_error = await call(process, "list_dir", path="/dev")
    assert not is_error and "null  (a character device)" in listing.splitlines()


async def test_hostile_paths_are_clear_errors_not_crashes(tmp_path: Path):
    files = tmp_path / "files"
    files.mkdir()
    os.symlink(files / "loop_b", files / "loop_a")
    os.symlink(files / "loop_a", files / "loop_b")
    os.symlink(files / "gone.txt", files / "dangling")
    process = tools_process(tmp_path, ["read_file", "list_dir"])
    assert await call(process, "read_file", path="loop_a") == ("'loop_a' is a symbolic link loop", True)
    assert await call(process, "read_file", path="a\x00b") == (
        "the path holds a NUL character; no file is named that way",
        True,
    )
    assert await call(process, "read_file", path="dangling") == ("file not found: dangling", True)
    text, is_error = await call(process, "read_file", path="x" * 5000)
    assert is_error and text.startswith("'xxx") and "File name too long" in text
    listing, is_error = await call(process, "list_dir")
    assert not is_error
    assert listing.splitlines() == ["dangling  (broken link)", "loop_a  (link loop)", "loop_b  (link loop)"]
