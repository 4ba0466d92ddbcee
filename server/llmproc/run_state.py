"""A run in progress, and what the tools that change it need of the process running it.

System calls (spawn, fork, goto) read and change the run: fork copies `base + pending`, goto
moves the point the run continues from, spawn and fork count their children. They reach the
process only through `RunningProcess`, so the tools layer never imports the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .budget import CostBudget
from .config import LimitsConfig
from .messages import Message
from .result import ChildRecord, RunResult, Usage, add_cost


class ChildProcess(Protocol):
    """A process a system call started: handed its first message, run once, closed."""

    def receive_descriptors(self, parent: RunningProcess, fds: Sequence[str], prompt: str) -> Message: ...

    async def run_message(self, message: Message) -> RunResult: ...

    async def aclose(self) -> None: ...


class RunningProcess(Protocol):
    """What system calls need of the process whose run called them."""

    depth: int
    limits: LimitsConfig
    budget: CostBudget | None

    @property
    def uses_descriptors(self) -> bool:
        """Whether the process has file descriptors to hand on to a child."""
        ...

    @property
    def program_name(self) -> str:
        """The name of the program it runs (which a fork child runs too)."""
        ...

    @property
    def linked_programs(self) -> Mapping[str, str | None]:
        """The programs spawn may start, with their descriptions."""
        ...

    def start_linked(self, name: str) -> ChildProcess:
        """A child running the linked program `name` (spawn)."""
        ...

    def start_fork(self, history: Sequence[Message]) -> ChildProcess:
        """A child running this program from `history`, with this process's descriptors (fork)."""
        ...

    def account_child(self, result: RunResult) -> None:
        """Count a finished child's usage and cost in this process's totals."""
        ...


@dataclass(eq=False)
class RunState:
    """One run in progress: the history it started from and what it added since.

    The process commits it only when the run completes.
    """

    process: RunningProcess
    base: list[Message]
    pending: list[Message]
    children_this_turn: int = 0
    goto: tuple[int, str] | None = None
    child_usage: Usage = field(default_factory=Usage)
    child_cost: float | None = 0.0
    children: list[ChildRecord] = field(default_factory=list)

    def add_child(self, result: RunResult, *, kind: str, program: str, tool_call_id: str) -> None:
        """Count a finished child's usage and cost as part of this run, and keep its record."""
        self.child_usage += result.usage
        self.child_cost = add_cost(self.child_cost, result.cost_usd)
        self.process.account_child(result)
        children = tuple(result.children)
        record = ChildRecord(
            kind, result.process_id, program, tool_call_id, result.usage, result.cost_usd, children
        )
        self.children.append(record)

    @property
    def messages(self) -> list[Message]:
        """The conversation as the run sees it now."""
        return [*self.base, *self.pending]
