"""The cost budget of a process tree: USD it may spend, charged by every process in it."""

from __future__ import annotations


class CostBudget:
    """USD a process tree may spend; a child's budget also charges its parent's."""

    def __init__(self, limit: float, parent: CostBudget | None = None) -> None:
        self.limit = limit
        self.spent = 0.0
        self.parent = parent

    def charge(self, cost: float | None) -> None:
        budget: CostBudget | None = self
        while budget is not None:
            budget.spent += cost or 0.0
            budget = budget.parent

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit or (self.parent is not None and self.parent.exhausted)

    def describe(self) -> str:
        budget: CostBudget = self
        while budget.spent < budget.limit and budget.parent is not None:
            budget = budget.parent
        return f"the cost budget of ${budget.limit:g} for this process tree is spent (${budget.spent:.4f})"
