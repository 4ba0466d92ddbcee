"""LLMProcess: a running program with conversation state.

One async code path: `arun` is the run; `run` returns its coroutine inside an event
loop and drives it to completion from synchronous code. A run is atomic: new messages
collect in a pending list and join the history only when the run completes, so an
error or a cancellation leaves the history exactly as it was.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _sync
from . import snapshot as snapshot_module
from .errors import ProcessError
from .events import EventCallback
from .kernel import Kernel, default_kernel
from .limits import Limits, limits_for
from .loop import TurnHook, Turns, run_turns
from .messages import Message, TextBlock, check_unicode, new_message_id
from .process_tools import ProcessTools
from .program import LLMProgram
from .providers import create_provider
from .providers.base import Provider
from .providers.pricing import cost_usd, price_from_config
from .result import RunResult, Usage, add_cost
from .run_state import RunState
from .tools.base import ToolSpec
from .tools.fd import REFERENCE_INSTRUCTIONS, FileDescriptors
from .turn_hooks import CostBudgetHook, GotoHook, ReferenceCapture

log = logging.getLogger("llmproc")

_FILE_TOOLS = {"read_file", "list_dir", "fd_to_file"}


class LLMProcess:
    """A process: a program plus its conversation, usage and cost."""

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
        self._provider: Provider | None = None
        self._callbacks: list[EventCallback] = []
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._closed = False
        self._running = 0
        self.usage = Usage()
        self.cost_usd: float | None = 0.0
        self._price = price_from_config(program.config.model.pricing)
        config = program.config
        self._limits: Limits = limits_for(config.limits, parent._limits if parent else None, nested)
        self.depth, self.limits, self.budget = self._limits.depth, self._limits.config, self._limits.budget
        builtin = set(config.tools.builtin)
        self._show_ids = "goto" in builtin
        fds_on = config.file_descriptor.enabled or bool(builtin & {"read_fd", "fd_to_file"})
        if parent is not None and parent.fds is not None and inherit_descriptors:
            self.fds: FileDescriptors | None = parent.fds.copy()
        else:
            self.fds = FileDescriptors(config.file_descriptor) if fds_on else None
        self._tools = ProcessTools(program, self.kernel, self.fds, self.limits.max_access)
        references = self.fds is not None and config.file_descriptor.enable_references
        self._system_prompt = "\n\n".join(
            p for p in (program.system_prompt, REFERENCE_INSTRUCTIONS if references else "") if p
        )
        self.kernel.register(self)

    @classmethod
    def from_toml(cls, path: str | Path) -> LLMProcess:
        """Load a program file and start a process running it (the seed's API)."""
        return cls(LLMProgram.from_toml(path))

    # -- state ---------------------------------------------------------------------------------

    @property
    def messages(self) -> tuple[Message, ...]:
        """The conversation so far (immutable messages)."""
        return tuple(self._history)

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
        return removed

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The process's state as a versioned, JSON-serialisable document (see `restore`)."""
        self._check_idle("snapshot")
        return snapshot_module.snapshot(self)

    @classmethod
    def restore(
        cls, snapshot: dict[str, Any], program: LLMProgram | None = None, *, convert: bool = False
    ) -> LLMProcess:
        """A process continuing from `snapshot`, with the same id and message ids.

        The program is loaded from the snapshot's path unless given. A snapshot of another
        provider is refused unless `convert` (its provider-specific parts are then dropped);
        a program file changed since the snapshot is logged and noted in `program_changed`.
        """
        return cls._from_state(snapshot_module.read(snapshot, program, convert=convert))

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
        process.usage, process.cost_usd = state.usage, state.cost_usd
        if state.descriptors and process.fds is None:
            log.warning(
                "program %s no longer uses file descriptors; the snapshot's are dropped", state.program.path
            )
        elif process.fds is not None:
            for name, entry in state.descriptors.items():
                process.fds.store(entry["text"], source=entry.get("source", ""), name=name)
            if state.fd_next:
                process.fds.next_number = max(process.fds.next_number, state.fd_next)
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
        return (await self._tools.router(self)).specs

    def add_callback(self, callback: EventCallback) -> None:
        """Receive the events of every run (text deltas, tool calls, finished turns)."""
        self._callbacks.append(callback)

    def remove_callback(self, callback: EventCallback) -> None:
        self._callbacks.remove(callback)

    # -- children ------------------------------------------------------------------------------

    @property
    def linked_programs(self) -> Mapping[str, str | None]:
        """The programs spawn may start, with their descriptions."""
        return {name: description for name, (_, description) in self.program.linked_program_paths.items()}

    @property
    def uses_descriptors(self) -> bool:
        return self.fds is not None

    def start_linked(self, name: str) -> LLMProcess:
        """A child running the linked program `name` (spawn)."""
        return LLMProcess(self.program.linked_program(name), parent=self)

    def start_fork(self, history: Sequence[Message]) -> LLMProcess:
        """A child running this program from `history`, with copies of the descriptors (fork)."""
        return LLMProcess(self.program, history=history, parent=self, inherit_descriptors=True)

    def receive_descriptors(self, parent: Any, fds: Sequence[str], prompt: str) -> Message:
        """The first message of a spawned child, handing it the parent's descriptors `fds`."""
        if not fds:
            return self._user_message(prompt)
        if not isinstance(parent, LLMProcess) or parent.fds is None:
            raise ProcessError("this process has no file descriptors to hand on")
        notes = []
        for fd in fds:
            text = parent.fds.text(fd)
            if self.fds is not None:
                self.fds.adopt(fd, parent.fds)
                notes.append(f"{fd} ({len(text):,} characters; read it with read_fd)")
            else:
                notes.append(f'<fd name="{fd}">\n{text}\n</fd>')
        return self._user_message(prompt + "\n\nDescriptors handed to you:\n" + "\n".join(notes))

    async def run_message(self, message: Message) -> RunResult:
        """Run a prepared first message (how spawn and fork start their children)."""
        return await self._locked_run(message, ())

    # -- running -------------------------------------------------------------------------------

    def run(self, message: str, *, on_event: EventCallback | None = None) -> Any:
        """Run one user message: `await process.run(...)`, or call it directly from sync code.

        Returns a `RunResult` (a coroutine of one inside a running event loop).
        """
        coroutine = self.arun(message, on_event=on_event)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _sync.run(coroutine)
        return coroutine

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
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop) or self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            self._running += 1
            try:
                first = message if isinstance(message, Message) else self._user_input(message)
                return await self._run(first, callbacks)
            finally:
                self._running -= 1

    def _user_message(self, text: str) -> Message:
        """A user message; with goto enabled its id is shown to the model as a [msg-N] prefix."""
        if not self._show_ids:
            return Message.user(text)
        message_id = new_message_id()
        return Message("user", (TextBlock(f"[{message_id}] {text}"),), id=message_id)

    def _user_input(self, text: str) -> Message:
        config = self.program.config.file_descriptor
        if self.fds is not None and config.page_user_input:
            paged = self.fds.page_if_long(text, source="The user's message", limit=config.max_input_chars)
            if paged is not None:
                return self._user_message(paged)
        return self._user_message(text)

    def _provider_instance(self) -> Provider:
        if self._provider is None:
            self._provider = create_provider(self.program.provider_settings, self.kernel)
        return self._provider

    async def _run(self, user_message: Message, callbacks: Sequence[EventCallback]) -> RunResult:
        """One run: the turns (loop.py), then what they added joins the history."""
        turns = Turns(
            provider=self._provider_instance(),
            tools=await self._tools.router(self),
            system_prompt=self._system_prompt,
            max_iterations=self.program.config.model.max_iterations,
            hooks=self._hooks,
            account=self._account,
            page_result=self._tools.page_long_result,
        )
        run = RunState(self, self._history, [user_message])
        outcome = await run_turns(turns, run, callbacks)
        if run.base is self._history:
            self._history.extend(run.pending)
        else:
            self._history = [*run.base, *run.pending]
        final = next((m for m in reversed(run.pending) if m.role == "assistant"), None)
        return RunResult(
            text=final.text if final else "",
            process_id=self.id,
            stop_reason=outcome.stop_reason,
            usage=outcome.usage + run.child_usage,
            cost_usd=add_cost(self._cost(outcome.usage), run.child_cost),
            tool_calls=outcome.tool_calls,
            iterations=outcome.iterations,
        )

    @property
    def _hooks(self) -> list[TurnHook]:
        """What happens around each turn, as this program asks."""
        hooks: list[TurnHook] = []
        if self.budget is not None:
            hooks.append(CostBudgetHook(self.budget))
        if self.fds is not None and self.program.config.file_descriptor.enable_references:
            hooks.append(ReferenceCapture(self.fds))
        if "goto" in self._tools.builtin:
            hooks.append(GotoHook(self._user_message))
        return hooks

    def _cost(self, usage: Usage) -> float | None:
        model = self.program.config.model
        return cost_usd(model.provider, model.name, usage, self._price)

    def _account(self, usage: Usage) -> None:
        """Totals count every completed request, even in runs that later failed: those are billed too."""
        self.usage += usage
        cost = self._cost(usage)
        self.cost_usd = add_cost(self.cost_usd, cost)
        if self.budget is not None:
            self.budget.charge(cost)

    def account_child(self, result: RunResult) -> None:
        """A child's spending counts in this process's totals (its budget was charged already)."""
        self.usage += result.usage
        self.cost_usd = add_cost(self.cost_usd, result.cost_usd)

    # -- lifetime ------------------------------------------------------------------------------

    async def wait_idle(self) -> None:
        """Return once no run of this process is in progress on this event loop."""
        lock = self._locks.get(asyncio.get_running_loop())
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
        coroutine = self.aclose()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _sync.run(coroutine)
        return coroutine

    async def __aenter__(self) -> LLMProcess:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"LLMProcess(id={self.id!r}, program={self.program.source!r}, messages={len(self._history)})"


LLMProgram.starter = LLMProcess
