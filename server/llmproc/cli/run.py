"""`llmproc PROGRAM [PROMPT]`: run a program once and print the reply; `llmproc schema`;
`llmproc init [DIR]`: write starter programs.

The prompt comes from the argument or -p, else from piped stdin, else from the
program's [prompt] user. On a terminal the reply streams as it arrives. --save PATH
writes the process's snapshot after the run; --resume PATH continues it. Exit codes:
0 success, 1 provider error, 2 usage error, 3 program error, 4 runtime error (an MCP
server that can not start, a spent cost budget), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from . import add_version

EXIT_PROVIDER, EXIT_USAGE, EXIT_PROGRAM, EXIT_RUNTIME, EXIT_INTERRUPTED = 1, 2, 3, 4, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmproc",
        description="Run an llmproc program once and print the reply.",
        epilog="`llmproc init [DIR]` writes starter programs (default ./programs); "
        "`llmproc schema` prints the JSON Schema of program files.",
    )
    add_version(parser)
    parser.add_argument("program", nargs="?", help="path to a program (.toml); optional with --resume")
    parser.add_argument("prompt", nargs="?", help="the user message (or use -p, or pipe it on stdin)")
    parser.add_argument("-p", "--prompt", dest="prompt_option", metavar="PROMPT", help="the user message")
    parser.add_argument("--json", action="store_true", help="print the RunResult as JSON")
    parser.add_argument("--no-stream", action="store_true", help="print the reply only when it is complete")
    parser.add_argument("--save", metavar="PATH", help="save the process (a snapshot) to PATH after the run")
    parser.add_argument(
        "--resume", metavar="PATH", help="continue the process saved in PATH (its program, unless given)"
    )
    return parser


def _fail(code: int, message: str) -> int:
    print(f"llmproc: error: {message}", file=sys.stderr)
    return code


def _start(args: argparse.Namespace) -> tuple[Any, str | None]:
    """The process to run (new, or resumed from a snapshot) and the prompt the arguments give."""
    from llmproc import LLMProcess, LLMProgram

    prompt = args.prompt_option or args.prompt
    if args.resume is None:
        if args.program is None:
            raise _Usage("give a program, or --resume PATH")
        return LLMProcess(LLMProgram.from_toml(args.program)), prompt
    program_path = args.program
    if program_path is not None and prompt is None and not os.path.isfile(program_path):
        program_path, prompt = None, program_path  # `llmproc --resume s.json "next question"`
    program = LLMProgram.from_toml(program_path) if program_path else None
    return LLMProcess.load(args.resume, program), prompt


class _Usage(Exception):
    pass


async def _run(args: argparse.Namespace) -> int:
    from llmproc import LLMProcError, ProgramError, ProviderError, SnapshotError, TextDelta

    try:
        process, prompt = _start(args)
    except _Usage as err:
        return _fail(EXIT_USAGE, str(err))
    except (ProgramError, SnapshotError) as err:
        return _fail(EXIT_PROGRAM, str(err))
    program = process.program
    if prompt is None and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip() or None
    if prompt is None and args.resume is None:
        prompt = program.config.prompt.user
    if not prompt:
        await process.aclose()
        return _fail(EXIT_USAGE, "no prompt: pass one as an argument, with -p, on stdin, or as [prompt] user")
    stream = not args.json and not args.no_stream and sys.stdout.isatty()
    streamed = False

    def show(event: Any) -> None:
        nonlocal streamed
        if isinstance(event, TextDelta):
            streamed = True
            sys.stdout.write(event.text)
            sys.stdout.flush()

    try:
        async with process:  # closing stops the program's MCP servers
            result = await process.run(prompt, on_event=show if stream else None)
    except ProviderError as err:
        return _fail(EXIT_PROVIDER, str(err))
    except LLMProcError as err:  # an MCP server that can not start, a spent cost budget
        return _fail(EXIT_RUNTIME, str(err))
    if args.json:
        print(json.dumps({"program": str(program.path), **result.to_dict()}, indent=2))
    elif streamed:
        print()
    else:
        print(result.text)
    if args.save:
        try:
            process.save(args.save)
        except OSError as err:
            return _fail(EXIT_RUNTIME, f"the process could not be saved to {args.save}: {err.strerror}")
    return 0


def _schema(argv: list[str]) -> int:
    """`llmproc schema [-o PATH]`: the JSON Schema of program files, for editors."""
    parser = argparse.ArgumentParser(
        prog="llmproc schema", description="Print the JSON Schema of llmproc program files."
    )
    parser.add_argument("-o", "--output", metavar="PATH", help="write it to PATH instead of stdout")
    args = parser.parse_args(argv)
    from llmproc.config import program_json_schema_text

    text = program_json_schema_text()
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as err:
        return _fail(EXIT_USAGE, f"can not write {args.output}: {err.strerror}")
    return 0


STARTER_NEXT_STEPS = """\
Try them:
  llmproc {dir}/scripted.toml "Hello"   # no API key needed
  llmproc-demo --programs {dir}   # pick one and chat
  llmproc-mcp --programs {dir}   # publish them as tools to an MCP host
The others need a key: ANTHROPIC_API_KEY (minimal), OPENAI_API_KEY (openai), GEMINI_API_KEY (gemini).
"""


def _init(argv: list[str]) -> int:
    """`llmproc init [DIR] [--force]`: the starter programs shipped in the package, in DIR.

    An installed package has no repository beside it: this is how a new user gets programs
    that run at once (scripted, offline) and with a key (one per provider)."""
    parser = argparse.ArgumentParser(
        prog="llmproc init", description="Write starter programs: one that runs offline, one per provider."
    )
    parser.add_argument("directory", nargs="?", default="programs", help="where (default: ./programs)")
    parser.add_argument("--force", action="store_true", help="overwrite files that are already there")
    args = parser.parse_args(argv)
    from importlib.resources import files

    starter = sorted((p for p in files("llmproc").joinpath("starter").iterdir() if p.name.endswith(".toml")),
                     key=lambda p: p.name)  # fmt: skip
    target = os.path.abspath(args.directory)
    present = [p.name for p in starter if os.path.exists(os.path.join(target, p.name))]
    if present and not args.force:
        return _fail(EXIT_USAGE, f"{target} already has {', '.join(present)}; pass --force to overwrite")
    try:
        os.makedirs(target, exist_ok=True)
        for program in starter:
            with open(os.path.join(target, program.name), "w", encoding="utf-8") as out:
                out.write(program.read_text(encoding="utf-8"))
    except OSError as err:
        return _fail(EXIT_USAGE, f"can not write to {target}: {err.strerror}")
    print(f"wrote {len(starter)} programs to {target}: {', '.join(p.name for p in starter)}")
    print(STARTER_NEXT_STEPS.format(dir=os.path.relpath(target)), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["schema"] and not os.path.isfile("schema"):  # a program file named 'schema' still runs
        return _schema(argv[1:])
    if argv[:1] == ["init"] and not os.path.isfile("init"):
        return _init(argv[1:])
    args = _parser().parse_intermixed_args(argv)  # `llmproc p.toml --json "hi"` works too
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
