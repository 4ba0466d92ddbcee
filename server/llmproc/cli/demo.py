"""`llmproc-demo [PROGRAM]`: pick an example program and chat with it in the terminal.

Without an argument the programs under ./programs (or --programs DIR) are listed by their
[demo] display_name and picked by number. The chat streams replies, shows each tool call
with a short result and the cost of every turn. `exit` / `quit` leave, `reset` clears the
conversation, `demo` plays the program's [demo] prompts. Ctrl-C during a reply cancels that
reply only: the conversation stays as it was before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import add_version

if TYPE_CHECKING:
    from rich.console import Console

    from llmproc import LLMProcess, LLMProgram, RunEvent, RunResult

EXIT_USAGE, EXIT_PROGRAM = 2, 3
HELP = (
    "Commands: 'exit' or 'quit' to leave, 'reset' to clear the conversation, 'demo' to play the "
    "program's [demo] prompts, 'help' for this line."
)
SHORT_RESULT = 120

LineReader = Callable[[str], Awaitable[str]]


@dataclass(frozen=True)
class Listed:
    """A program file in the picker: its display name, or why it does not load."""

    path: Path
    title: str
    error: str | None = None


def find_programs(root: Path) -> list[Listed]:
    """Every *.toml under `root`, loaded for its display name; failures are listed too."""
    from llmproc import LLMProgram, ProgramError

    found = []
    for path in sorted(root.rglob("*.toml")):
        try:
            program = LLMProgram.from_toml(path)
        except ProgramError as err:
            found.append(Listed(path, path.stem, str(err).splitlines()[0]))
            continue
        named = program.config.demo.display_name or program.config.model.display_name
        found.append(Listed(path, named or f"{path.stem} ({program.display_name})"))
    return found


def _history_file() -> Path | None:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    path = Path(state) / "llmproc" / "demo_history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError:
        return None
    return path


def line_reader() -> LineReader:
    """prompt_toolkit (line editing, history kept across sessions) on a terminal, plain lines otherwise."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        history_file = _history_file()
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(history_file)) if history_file else InMemoryHistory()
        )

        async def read_terminal(prompt: str) -> str:
            return await session.prompt_async(prompt)

        return read_terminal

    async def read_plain(prompt: str) -> str:
        sys.stdout.write(prompt)
        sys.stdout.flush()
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            raise EOFError
        line = line.rstrip("\n")
        if not sys.stdin.isatty():  # piped input: echo it so the transcript reads as a chat
            sys.stdout.write(line + "\n")
        return line

    return read_plain


def _short(value: Any, limit: int = SHORT_RESULT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Chat:
    """One interactive conversation with a process, drawn on a rich console."""

    def __init__(self, process: LLMProcess, console: Console, read_line: LineReader) -> None:
        self.process = process
        self.console = console
        self.read_line = read_line
        self._mid_line = False

    # -- drawing -------------------------------------------------------------------------------

    def _end_line(self) -> None:
        if self._mid_line:
            self.console.print()
            self._mid_line = False

    def show(self, event: RunEvent) -> None:
        from rich.text import Text

        from llmproc import TextDelta, ToolCallFinished, ToolCallStarted

        if isinstance(event, TextDelta):
            self.console.print(event.text, end="", markup=False, highlight=False, soft_wrap=True)
            self._mid_line = not event.text.endswith("\n")
        elif isinstance(event, ToolCallStarted):
            self._end_line()
            arguments = _short(event.call.arguments)
            self.console.print(
                Text.assemble(("  ⚙ ", "cyan"), (event.call.name, "bold cyan"), f" {arguments}")
            )
        elif isinstance(event, ToolCallFinished):
            style = "red" if event.result.is_error else "dim"
            label = "error" if event.result.is_error else "result"
            self.console.print(
                Text(f"    ↳ {label} ({event.duration_s:.1f}s): {_short(event.result.text)}", style=style)
            )

    def _show_cost(self, result: RunResult) -> None:
        usage = result.usage
        tokens = f"{usage.total_input_tokens:,} in · {usage.output_tokens:,} out"
        if usage.reasoning_tokens:
            tokens += f" ({usage.reasoning_tokens:,} reasoning)"
        cost = "cost unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
        total = self.process.cost_usd
        session = "" if total is None else f" · session ${total:.4f}"
        calls = f" · {len(result.tool_calls)} tool call(s)" if result.tool_calls else ""
        self.console.print(f"[dim]\\[{tokens} · {cost}{session}{calls}][/dim]")

    # -- the loop ------------------------------------------------------------------------------

    async def reply(self, message: str) -> RunResult | None:
        """Run one message; Ctrl-C cancels it and leaves the conversation as it was."""
        from rich.text import Text

        from llmproc import LLMProcError

        task = asyncio.ensure_future(self.process.arun(message, on_event=self.show))
        loop = asyncio.get_running_loop()
        interruptible = sys.platform != "win32"
        if interruptible:
            loop.add_signal_handler(signal.SIGINT, task.cancel)
        try:
            await asyncio.wait([task])
        finally:
            if interruptible:
                loop.remove_signal_handler(signal.SIGINT)
        self._end_line()
        if task.cancelled():
            self.console.print("[yellow]\\[reply cancelled; the conversation is as it was before it][/]")
            return None
        error = task.exception()
        if isinstance(error, LLMProcError):
            self.console.print(Text.assemble(("error: ", "bold red"), str(error)))
            return None
        if error is not None:
            raise error
        result = task.result()
        if not result.text.strip() and not result.tool_calls:
            self.console.print("[dim](empty reply)[/]")
        self._show_cost(result)
        return result

    async def play_demo_prompts(self) -> None:
        demo = self.process.program.config.demo
        for number, prompt in enumerate(demo.prompts, 1):
            if number > 1 and demo.pause_between_prompts:
                await self.read_line("[Enter for the next prompt] ")
            self.console.print(f"[bold green]you>[/] {prompt}", highlight=False)
            if await self.reply(prompt) is None:
                return

    async def loop(self) -> None:
        while True:
            try:
                line = (await self.read_line("you> ")).strip()
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line, as in a shell
            except EOFError:
                self.console.print()
                return
            command = line.lower()
            if not line:
                continue
            if command in ("exit", "quit"):
                return
            if command == "reset":
                self.process.reset_state()
                self.console.print("[dim]conversation cleared[/]")
            elif command == "help":
                self.console.print(HELP, highlight=False, markup=False)
            elif command == "demo":  # never sent to the model, prompts or not
                if self.process.program.config.demo.prompts:
                    await self.play_demo_prompts()
                else:
                    self.console.print("[dim]this program has no \\[demo] prompts[/]")
            else:
                await self.reply(line)


async def pick_program(
    programs: list[Listed], root: Path, console: Console, read_line: LineReader
) -> Path | None:
    """Show the numbered list and read a choice; None when the user leaves."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("#", justify="right")
    table.add_column("program")
    table.add_column("file", style="dim", overflow="fold")
    for number, listed in enumerate(programs, 1):
        title = Text(listed.title) if listed.error is None else Text(f"{listed.title} (does not load)", "red")
        table.add_row(str(number), title, listed.path.relative_to(root).as_posix())
    console.print(f"Programs in {root}:", highlight=False)
    console.print(table)
    while True:
        try:
            answer = (await read_line(f"Pick a program [1-{len(programs)}, q to quit]: ")).strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return None
        if answer.lower() in ("q", "quit", "exit"):
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(programs):
            chosen = programs[int(answer) - 1]
            if chosen.error is None:
                return chosen.path
            console.print(Text.assemble((f"{chosen.path} does not load: ", "red"), chosen.error))
        else:
            console.print(f"Type a number from 1 to {len(programs)}.")


def _banner(program: LLMProgram, console: Console) -> None:
    from rich.text import Text

    model = f"{program.config.model.provider} {program.config.model.name}"
    title = Text(program.display_name, "bold")
    if program.display_name != model:
        title.append(f"  {model}", "dim")
    console.print(title)
    count = len(program.config.demo.prompts)
    if count:
        console.print(f"[dim]Type 'demo' to play its {count} demo prompt{'s' if count != 1 else ''}.[/]")
    console.print(HELP, style="dim", highlight=False, markup=False)


async def _main(args: argparse.Namespace, console: Console) -> int:
    from llmproc import LLMProcess, LLMProgram, ProgramError

    read_line = line_reader()
    if args.program is not None and not Path(args.program).is_dir():
        path = Path(args.program)
    else:
        root = Path(args.program or args.programs)
        if not root.is_dir():
            _error(
                f"no programs directory '{root}'; pass a program or --programs DIR (llmproc init writes one)"
            )
            return EXIT_USAGE
        programs = find_programs(root)
        if not programs:
            _error(f"no .toml programs under '{root}'")
            return EXIT_USAGE
        chosen = await pick_program(programs, root, console, read_line)
        if chosen is None:
            return 0
        path = chosen
    try:
        program = LLMProgram.from_toml(path)
    except ProgramError as err:
        _error(str(err))
        return EXIT_PROGRAM
    _banner(program, console)
    async with LLMProcess(program) as process:
        await Chat(process, console, read_line).loop()
    return 0


def _error(message: str) -> None:
    """Errors go to stderr as plain lines: rich would wrap them at 80 columns mid-sentence
    when stderr is not a terminal (a log, a pipe, a test)."""
    print(f"llmproc-demo: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmproc-demo", description="Chat with an llmproc program.")
    add_version(parser)
    parser.add_argument("program", nargs="?", help="a program (.toml) or a directory of programs")
    parser.add_argument(
        "--programs",
        default="programs",
        help="directory to list without a program (default: programs)",
    )
    args = parser.parse_args(argv)
    from rich.console import Console

    console = Console(highlight=False)
    try:
        return asyncio.run(_main(args, console))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (| head): not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
