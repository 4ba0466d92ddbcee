"""What a process does around each turn of its run loop: its `TurnHook`s.

Each is chosen by the program (a budget, file-descriptor references, the goto system call);
the loop calls them and knows none of them.
"""

from __future__ import annotations

from collections.abc import Callable

from .budget import CostBudget
from .errors import ProcessError
from .loop import Stop, TurnHook
from .messages import Message
from .run_state import RunState
from .tools.fd import FileDescriptors


class CostBudgetHook(TurnHook):
    """A spent budget refuses a run before its first request, and stops one before the next."""

    def __init__(self, budget: CostBudget) -> None:
        self._budget = budget

    def before_turn(self, run: RunState, iteration: int) -> Stop | None:
        if not self._budget.exhausted:
            return None
        if iteration == 1:
            raise ProcessError(self._budget.describe())
        return Stop("cost_budget")


class ReferenceCapture(TurnHook):
    """Marked passages of the model's replies become file descriptors (`ref:NAME`)."""

    def __init__(self, fds: FileDescriptors) -> None:
        self._fds = fds

    def after_reply(self, run: RunState, reply: Message) -> None:
        self._fds.capture_references(reply.text)


class GotoHook(TurnHook):
    """After a goto call, the run continues from the chosen point with the model's message."""

    def __init__(self, user_message: Callable[[str], Message]) -> None:
        self._user_message = user_message

    def after_tools(self, run: RunState) -> None:
        if run.goto is None:
            return
        index, text = run.goto
        run.base, run.goto = run.messages[:index], None
        run.pending = [self._user_message(text)]


def hooks_for(
    budget: CostBudget | None,
    references: FileDescriptors | None,
    goto: bool,
    user_message: Callable[[str], Message],
) -> list[TurnHook]:
    """What happens around each turn of a process, as its program asks."""
    hooks: list[TurnHook] = []
    if budget is not None:
        hooks.append(CostBudgetHook(budget))
    if references is not None:
        hooks.append(ReferenceCapture(references))
    if goto:
        hooks.append(GotoHook(user_message))
    return hooks
