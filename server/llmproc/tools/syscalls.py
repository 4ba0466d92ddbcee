"""System calls: spawn (program linking), fork and goto. Only the kernel can do these.

Each needs the process and the run that called it, which it reads from `current_call`.
Limits (nesting depth, children per model turn, the cost budget) are checked before any
child starts; a call that would exceed one gets an error result that says which limit.
"""

from __future__ import annotations

from typing import Any

import anyio

from ..errors import LLMProcError, ProcessError
from ..messages import Message, TextBlock, ToolResultBlock
from ..result import RunResult
from ..run_state import RunningProcess, RunState
from .base import CallContext, ToolOutcome, ToolSpec, current_call

SYSCALLS = ("spawn", "fork", "goto")


def _context() -> CallContext:
    context = current_call.get()
    if context is None:
        raise ProcessError("system calls run only inside a process's run")
    return context


def _error(text: str) -> ToolOutcome:
    return ToolOutcome.text(text, is_error=True)


def _limit_problem(process: RunningProcess, run: RunState, children: int) -> str | None:
    limits = process.limits
    if process.depth >= limits.max_depth:
        return (
            f"limit reached: processes may nest {limits.max_depth} deep and this one is at depth "
            f"{process.depth}; answer without starting more processes"
        )
    if run.children_this_turn + children > limits.max_children_per_turn:
        return (
            f"limit reached: at most {limits.max_children_per_turn} child processes per model turn "
            f"({run.children_this_turn} started already, {children} asked for)"
        )
    if process.budget is not None and process.budget.exhausted:
        return f"limit reached: {process.budget.describe()}"
    return None


def _answer(result: RunResult) -> str:
    text = result.text or "(no answer)"
    if result.stop_reason in ("max_iterations", "cost_budget"):
        text += f"\n[stopped early: {result.stop_reason.replace('_', ' ')}]"
    return text


class SyscallToolset:
    """The system calls a program enabled, with schemas built from its linked programs."""

    def __init__(self, process: RunningProcess, names: set[str]) -> None:
        self._process = process
        self._specs: list[ToolSpec] = []
        if "spawn" in names:
            self._specs.append(self._spawn_spec())
        if "fork" in names:
            self._specs.append(_FORK)
        if "goto" in names:
            self._specs.append(_GOTO)

    def specs(self) -> list[ToolSpec]:
        return self._specs

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        context = _context()
        handler = {"spawn": self._spawn, "fork": self._fork, "goto": self._goto}[name]
        return await handler(arguments, context.run, context)

    # -- spawn ---------------------------------------------------------------------------------

    def _spawn_spec(self) -> ToolSpec:
        linked = self._process.linked_programs
        lines = [f"- {name}: {description or 'no description'}" for name, description in linked.items()]
        properties: dict[str, Any] = {
            "program_name": {
                "type": "string",
                "enum": list(linked),
                "description": "Which linked program to start.",
            },
            "prompt": {"type": "string", "description": "The complete request for it; it sees nothing else."},
        }
        if self._process.uses_descriptors:
            properties["fds"] = {
                "type": "array",
                "items": {"type": "string"},
                "description": "File descriptors (fd:N, ref:NAME) to hand to the child.",
            }
        return ToolSpec(
            name="spawn",
            description=(
                "Start a fresh process of a linked program (an expert with its own instructions and "
                "knowledge), send it one prompt, and get its final answer back. Several spawns in one "
                "turn run at the same time.\nLinked programs:\n" + ("\n".join(lines) or "(none)")
            ),
            parameters={
                "type": "object",
                "properties": properties,
                "required": ["program_name", "prompt"],
                "additionalProperties": False,
            },
        )

    async def _spawn(self, arguments: dict[str, Any], run: RunState, context: CallContext) -> ToolOutcome:
        process = self._process
        name, prompt = arguments.get("program_name"), arguments.get("prompt")
        linked = process.linked_programs
        if not isinstance(name, str) or name not in linked:
            return _error(f"unknown program '{name}'; linked programs: {', '.join(linked) or 'none'}")
        if not isinstance(prompt, str) or not prompt.strip():
            return _error("spawn needs a non-empty 'prompt'")
        fds = arguments.get("fds") or []
        if not isinstance(fds, list) or not all(isinstance(fd, str) for fd in fds):
            return _error("'fds' must be a list of descriptor names such as \"fd:1\"")
        problem = _limit_problem(process, run, 1)
        if problem:
            return _error(problem)
        run.children_this_turn += 1
        try:
            child = process.start_linked(name)
            message = child.receive_descriptors(process, fds, prompt)
        except LLMProcError as err:
            return _error(f"spawn {name}: {err}")
        try:
            result = await child.run_message(message)
        except LLMProcError as err:
            return _error(f"{name} failed: {err}")
        finally:
            await child.aclose()
        run.add_child(result, kind="spawn", program=name, tool_call_id=context.call.id)
        return ToolOutcome.text(_answer(result))

    # -- fork ----------------------------------------------------------------------------------

    async def _fork(self, arguments: dict[str, Any], run: RunState, context: CallContext) -> ToolOutcome:
        process = self._process
        prompts = arguments.get("prompts")
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) and p.strip() for p in prompts)
        ):
            return _error("fork needs 'prompts': a list of one or more non-empty task descriptions")
        problem = _limit_problem(process, run, len(prompts))
        if problem:
            return _error(problem)
        run.children_this_turn += len(prompts)
        history = run.messages  # ends with the assistant turn that called fork
        caller = history[-1]
        answers: list[str] = [""] * len(prompts)

        async def run_child(index: int, prompt: str) -> None:
            child = process.start_fork(history)
            results = tuple(
                ToolResultBlock(
                    call.id,
                    (
                        TextBlock(
                            _fork_task(index, len(prompts), prompt)
                            if call.id == context.call.id
                            else _ELSEWHERE
                        ),
                    ),
                    False,
                    call.name,
                )
                for call in caller.tool_calls
            )
            try:
                result = await child.run_message(Message("user", results))
            except LLMProcError as err:
                answers[index] = f"failed: {err}"
                return
            finally:
                await child.aclose()
            run.add_child(result, kind="fork", program=process.program_name, tool_call_id=context.call.id)
            answers[index] = _answer(result)

        async with anyio.create_task_group() as group:
            for index, prompt in enumerate(prompts):
                group.start_soon(run_child, index, prompt)
        return ToolOutcome.text(
            "\n\n".join(
                f'<fork_result child="{i + 1}" task="{_short(p)}">\n{a}\n</fork_result>'
                for i, (p, a) in enumerate(zip(prompts, answers, strict=True))
            )
        )

    # -- goto ----------------------------------------------------------------------------------

    async def _goto(self, arguments: dict[str, Any], run: RunState, context: CallContext) -> ToolOutcome:
        position, message = arguments.get("position"), arguments.get("message")
        if not isinstance(position, str) or not isinstance(message, str) or not message.strip():
            return _error("goto needs 'position' (a message id such as msg-3) and a non-empty 'message'")
        position = position.strip().strip("[]")
        messages = run.messages
        index = next((i for i, m in enumerate(messages) if m.id == position), None)
        if index is None:
            return _error(
                f"no message '{position}' in this conversation; ids appear as [msg-N] before user messages"
            )
        target = messages[index]
        if target.role != "user" or not target.text:
            return _error(f"'{position}' is not a user message; goto goes back to before a user message")
        run.goto = (index, message)
        dropped = len(messages) - index
        return ToolOutcome.text(
            f"Going back to before {position}: {dropped} messages are removed "
            "and your message takes its place."
        )


_ELSEWHERE = "(this call is answered in the parent process, not in this fork)"


def _fork_task(index: int, total: int, prompt: str) -> str:
    return (
        f"You are fork {index + 1} of {total}: a copy of the process that called fork, with its whole "
        f"conversation. Your task: {prompt}\nYour final reply is returned to the parent as your result."
    )


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split()).replace('"', "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"


_FORK = ToolSpec(
    name="fork",
    description=(
        "Copy this process (with the whole conversation so far) once per prompt; the copies work on "
        "their prompts at the same time and each one's final answer comes back here. Use it to split "
        "independent subtasks that all need the current context."
    ),
    parameters={
        "type": "object",
        "properties": {
            "prompts": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "One task per copy.",
            }
        },
        "required": ["prompts"],
        "additionalProperties": False,
    },
)

_GOTO = ToolSpec(
    name="goto",
    description=(
        "Go back in this conversation: every message from the user message with the given id on is "
        "removed, and `message` is added in its place. Ids appear as [msg-N] at the start of user "
        "messages. Use it to drop a long detour, carrying what you learned in `message`."
    ),
    parameters={
        "type": "object",
        "properties": {
            "position": {"type": "string", "description": "Id of a user message, for example msg-3."},
            "message": {"type": "string", "description": "The message that takes its place."},
        },
        "required": ["position", "message"],
        "additionalProperties": False,
    },
)
