"""LLMProcess: a running program with conversation state.

One async code path: `arun` is the run; `run` returns its coroutine inside an event
loop and drives it to completion from synchronous code. A run is atomic: new messages
collect in a pending list and join the history only when the run completes, so an
error or a cancellation leaves the history exactly as it was.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _sync
from . import snapshot as snapshot_module
from .errors import ProcessError
from .events import EventCallback
from .kernel import Kernel, default_kernel
from .limits import Limits, limits_for
from .loop import Turns, run_turns
from .messages import Message, check_unicode
from .process_tools import ProcessTools
from .program import LLMProgram
from .providers import create_provider
from .providers.base import Provider
from .result import ChildRecord, RunResult, Usage, add_cost
from .run_state import RunState
from .spending import Spending
from .tools.base import ToolSpec
from .tools.fd import REFERENCE_INSTRUCTIONS, FileDescriptors
from .turn_hooks import hooks_for

log = logging.getLogger("llmproc")


class LLMProcess:
    """A process: a program plus its conversation, usage and cost."""

    fds: FileDescriptors | None
    """Its file descriptors, when its program uses them."""

    def __init__(
        self,
        program: LLMProgram,
        *,
        kernel: Kernel | None = None,
        history: Sequence[Message] = (),
        parent: LLMProcess | None = None,
        nested: bool = True,
        inherit_descriptors: bool = False,
        process_id: str | None = None,
    ) -> None:
        """`parent` makes this a child (spawn, fork tool: `nested`) or a copy (`fork()`: not nested)
        of another process; either way it never gets more than the parent allows. `process_id`
        keeps the id of a restored process."""
        self.program = program
        self.kernel: Kernel = kernel or (parent.kernel if parent else default_kernel)
        self.id = process_id or self.kernel.new_process_id()
        self.parent_id = parent.id if parent else None
        self.program_changed = False
        """Restored from a snapshot taken with another version of the program file."""
        self._history: list[Message] = list(history)
        self._children: list[ChildRecord] = list(parent._children) if parent and not nested else []
        """Records of the children runs started, for as long as the calls that started them are
        in the history (a copy made by fork() shares the history, so them too)."""
        self._callbacks: list[EventCallback] = []
        self._locks = _sync.LoopLocks()
        self._closed = False
        self._running = 0
        config = program.config
        self._limits: Limits = limits_for(config.limits, parent._limits if parent else None, nested)
        self.depth, self.limits, self.budget = self._limits.depth, self._limits.config, self._limits.budget
        self._spending = Spending(config.model, self.budget)
        builtin = set(config.tools.builtin)
        self._show_ids = "goto" in builtin
        inherited = parent.fds if parent is not None and inherit_descriptors else None
        self.fds = FileDescriptors.for_process(config.file_descriptor, builtin, inherited)
        self._tools = ProcessTools(program, self.kernel, self.fds, self.limits.max_access)
        self._references = self.fds if config.file_descriptor.enable_references else None
        extra = REFERENCE_INSTRUCTIONS if self._references is not None else ""
        self._system_prompt = "\n\n".join(p for p in (program.system_prompt, extra) if p)
        self.kernel.register(self)

    @classmethod
    def from_toml(cls, path: str | Path) -> LLMProcess:
        """Load a program file and start a process running it (the seed's API)."""
        return cls(LLMProgram.from_toml(path))

    # -- state ---------------------------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        """Tokens of every completed request of this process and its children."""
        return self._spending.usage

    @property
    def cost_usd(self) -> float | None:
        """USD spent by this process and its children; None when a price is unknown."""
        return self._spending.cost_usd

    @property
    def messages(self) -> tuple[Message, ...]:
        """The conversation so far (immutable messages)."""
        return tuple(self._history)

    @property
    def child_records(self) -> tuple[ChildRecord, ...]:
        """The children runs started whose starting tool call is still in the history (a goto
        or a reset forgets the ones it took back), each with its cost and its own children."""
        return tuple(self._children)

    def _forget_children_of(self, removed: Sequence[Message]) -> None:
        """Messages left the history: so do the records of the children their calls started."""
        if not self._children:
            return
        calls = {b.id for m in removed if m.role == "assistant" for b in m.tool_calls}
        self._children = [c for c in self._children if c.tool_call_id not in calls]

    def history_view(self) -> Sequence[Message]:
        """The history without copying it (read-only; it is replaced, never changed in place,
        except by a completed run appending to it)."""
        return self._history

    @property
    def display_name(self) -> str:
        return self.program.display_name

    def get_last_message(self) -> str:
        """Text of the latest assistant message, or '' before the first reply."""
        for message in reversed(self._history):
            if message.role == "assistant":
                return message.text
        return ""

    def reset_state(self) -> None:
        """Forget the conversation; usage and cost totals are kept."""
        self._check_idle("reset_state")
        self._history = []
        self._children = []

    def fork(self) -> LLMProcess:
        """An independent copy sharing the (immutable) history; O(history) references only.

        The copy has the same limits and descriptors; it is not nested deeper than this process.
        """
        copy = LLMProcess(
            self.program, history=self._history, parent=self, nested=False, inherit_descriptors=True
        )
        copy._callbacks = list(self._callbacks)
        return copy

    def goto(self, message_id: str) -> tuple[Message, ...]:
        """Go back to just before the user message `message_id`; returns the messages removed.

        What the `goto` tool does for the model; `run()` the message that takes its place.
        """
        self._check_idle("goto")
        index = next((i for i, m in enumerate(self._history) if m.id == message_id), None)
        if index is None:
            raise ProcessError(f"no message '{message_id}' in the history of process {self.id}")
        if self._history[index].role != "user" or not self._history[index].text:
            raise ProcessError(
                f"'{message_id}' is not a user message; goto goes back to before a user message"
            )
        removed = tuple(self._history[index:])
        self._history = self._history[:index]
        self._forget_children_of(removed)
        return removed

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The process's state as a versioned, JSON-serialisable document (see `restore`)."""
        self._check_idle("snapshot")
        return snapshot_module.snapshot(self)

    @classmethod
    def restore(
        cls,
        snapshot: dict[str, Any],
        program: LLMProgram | None = None,
        *,
        convert: bool = False,
        known_messages: Sequence[Message] = (),
    ) -> LLMProcess:
        """A process continuing from `snapshot`, with the same id and message ids.

        The program is loaded from the snapshot's path unless given. A snapshot of another
        provider is refused unless `convert` (its provider-specific parts are then dropped);
        a program file changed since the snapshot is logged and noted in `program_changed`.
        `known_messages`: the history's start, already at hand; the snapshot's `messages` are
        the rest (how a server brings an out-of-date copy up to date by reading only the tail).
        """
        state = snapshot_module.read(snapshot, program, convert=convert, known=known_messages)
        return cls._from_state(state)

    def save(self, path: str | Path) -> Path:
        """Write the snapshot to `path` as JSON (atomically: a crash keeps the old file)."""
        self._check_idle("save")
        return snapshot_module.save(self, path)

    @classmethod
    def load(
        cls, path: str | Path, program: LLMProgram | None = None, *, convert: bool = False
    ) -> LLMProcess:
        """`restore` from a file written by `save`."""
        return cls.restore(snapshot_module.load_document(path), program, convert=convert)

    @classmethod
    def _from_state(cls, state: snapshot_module.SavedState) -> LLMProcess:
        process = cls(state.program, history=state.messages, process_id=state.process_id)
        process.parent_id = state.parent_id
        process.program_changed = state.program_changed
        process._spending.usage, process._spending.cost_usd = state.usage, state.cost_usd
        process._children = list(state.children)
        if state.descriptors and process.fds is None:
            log.warning(
                "program %s no longer uses file descriptors; the snapshot's are dropped", state.program.path
            )
        elif process.fds is not None:
            process.fds.restore(state.descriptors, state.fd_next)
        return process

    def children(self) -> list[str]:
        """The ids of this process's live child processes."""
        return self.kernel.children_of(self.id)

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self._running > 0

    def _check_idle(self, what: str) -> None:
        if self._running:
            raise ProcessError(f"{what}() while process {self.id} is running; wait for the run to finish")

    async def tool_specs(self) -> list[ToolSpec]:
        """The tools the model sees (this starts the program's MCP servers)."""
        return (await self._tools.router(_Kin(self))).specs

    def add_callback(self, callback: EventCallback) -> None:
        """Receive the events of every run (text deltas, tool calls, finished turns)."""
        self._callbacks.append(callback)

    def remove_callback(self, callback: EventCallback) -> None:
        self._callbacks.remove(callback)

    # -- children ------------------------------------------------------------------------------

    def receive_descriptors(self, parent: Any, fds: Sequence[str], prompt: str) -> Message:
        """The first message of a spawned child, handing it the parent's descriptors `fds`."""
        if not fds:
            return self._user_message(prompt)
        given = parent.fds if isinstance(parent, _Kin) else None
        if given is None:
            raise ProcessError("this process has no file descriptors to hand on")
        return self._user_message(prompt + given.hand_on(list(fds), self.fds))

    async def run_message(self, message: Message) -> RunResult:
        """Run a prepared first message (how spawn and fork start their children)."""
        return await self._locked_run(message, ())

    # -- running -------------------------------------------------------------------------------

    def run(self, message: str, *, on_event: EventCallback | None = None) -> Any:
        """Run one user message: `await process.run(...)`, or call it directly from sync code.

        Returns a `RunResult` (a coroutine of one inside a running event loop).
        """
        return _sync.either(self.arun(message, on_event=on_event))

    async def arun(self, message: str, *, on_event: EventCallback | None = None) -> RunResult:
        """Run one user message to the model's final answer."""
        if not isinstance(message, str):
            raise TypeError(f"run() takes the user message as a str, not {type(message).__name__}")
        if not message.strip():  # every provider refuses an empty user turn: say so before sending
            raise ProcessError("run() needs a message: this one is empty")
        check_unicode(message)
        callbacks = [*self._callbacks, on_event] if on_event else self._callbacks
        return await self._locked_run(message, callbacks)

    async def _locked_run(self, message: str | Message, callbacks: Sequence[EventCallback]) -> RunResult:
        if self._closed:
            raise ProcessError(f"process {self.id} is closed")
        async with self._locks.current():
            self._running += 1
            try:
                first = message if isinstance(message, Message) else self._user_input(message)
                return await self._run(first, callbacks)
            finally:
                self._running -= 1

    def _user_message(self, text: str) -> Message:
        return Message.user(text, show_id=self._show_ids)  # ids let the model name a goto point

    def _user_input(self, text: str) -> Message:
        """The user's message; a long one becomes a descriptor when the program pages input."""
        return self._user_message(self.fds.paged_input(text) if self.fds is not None else text)

    @functools.cached_property
    def _provider(self) -> Provider:
        return create_provider(self.program.provider_settings, self.kernel)

    async def _run(self, user_message: Message, callbacks: Sequence[EventCallback]) -> RunResult:
        """One run: the turns (loop.py), then what they added joins the history."""
        turns = Turns(
            provider=self._provider,
            tools=await self._tools.router(_Kin(self)),
            system_prompt=self._system_prompt,
            max_iterations=self.program.config.model.max_iterations,
            hooks=hooks_for(self.budget, self._references, self._show_ids, self._user_message),
            account=self._spending.charge,
            page_result=self._tools.page_long_result,
        )
        run = RunState(_Kin(self), self._history, [user_message])
        outcome = await run_turns(turns, run, callbacks)
        kept = len(self._history)  # messages before the run that are still there after it
        if run.base is self._history:
            self._history.extend(run.pending)
        else:  # a goto during the run: the history from its point on was replaced
            kept = min(kept, len(run.base))
            self._forget_children_of(self._history[kept:])
            self._history = [*run.base, *run.pending]
        if run.children:  # kept while their call is: a goto in this run may have taken it back
            added = self._history[kept:]
            calls = {b.id for m in added if m.role == "assistant" for b in m.tool_calls}
            self._children += [c for c in run.children if c.tool_call_id in calls]
        final = next((m for m in reversed(run.pending) if m.role == "assistant"), None)
        return RunResult(
            text=final.text if final else "",
            process_id=self.id,
            stop_reason=outcome.stop_reason,
            usage=outcome.usage + run.child_usage,
            cost_usd=add_cost(self._spending.cost_of(outcome.usage), run.child_cost),
            tool_calls=outcome.tool_calls,
            iterations=outcome.iterations,
            children=list(run.children),
        )

    # -- lifetime ------------------------------------------------------------------------------

    async def wait_idle(self) -> None:
        """Return once no run of this process is in progress on this event loop."""
        lock = self._locks.existing()
        if lock is not None:
            async with lock:
                pass

    async def aclose(self) -> None:
        """Release the process's resources (its share of MCP servers); further runs raise ProcessError."""
        if self._closed:
            return
        self._closed = True
        await self._tools.release()

    def close(self) -> Any:
        """`aclose()` for either world: await it in async code, or call it from sync code."""
        return _sync.either(self.aclose())

    async def __aenter__(self) -> LLMProcess:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"LLMProcess(id={self.id!r}, program={self.program.source!r}, messages={len(self._history)})"


class _Kin:
    """What a process's system calls see of it (`run_state.RunningProcess`): its limits, the
    children it may start, and its totals, which their spending joins."""

    def __init__(self, process: LLMProcess) -> None:
        self._process = process
        self.depth, self.limits, self.budget = process.depth, process.limits, process.budget
        self.fds = process.fds

    @property
    def uses_descriptors(self) -> bool:
        return self.fds is not None

    @property
    def program_name(self) -> str:
        return self._process.program.display_name

    @property
    def linked_programs(self) -> Mapping[str, str | None]:
        paths = self._process.program.linked_program_paths
        return {name: description for name, (_, description) in paths.items()}

    def start_linked(self, name: str) -> LLMProcess:
        process = self._process
        return LLMProcess(process.program.linked_program(name), parent=process)

    def start_fork(self, history: Sequence[Message]) -> LLMProcess:
        process = self._process
        return LLMProcess(process.program, history=history, parent=process, inherit_descriptors=True)

    def account_child(self, result: RunResult) -> None:
        """A child's spending counts in the process's totals (its budget was charged already)."""
        self._process._spending.add_child(result)


LLMProgram.starter = LLMProcess
