"""What a process has spent: its usage and cost totals, and its share of the tree's budget.

Totals count every completed request, even in runs that later failed: those are billed too.
A child's spending counts in its parent's totals; its budget was charged as it spent.
"""

from __future__ import annotations

from .budget import CostBudget
from .config import ModelConfig
from .providers.pricing import cost_usd, price_from_config
from .result import RunResult, Usage, add_cost


class Spending:
    def __init__(self, model: ModelConfig, budget: CostBudget | None) -> None:
        self.usage = Usage()
        self.cost_usd: float | None = 0.0
        self._model = model
        self._price = price_from_config(model.pricing)
        self._budget = budget

    def cost_of(self, usage: Usage) -> float | None:
        """What `usage` costs with this model's price (None when the price is unknown)."""
        return cost_usd(self._model.provider, self._model.name, usage, self._price)

    def charge(self, usage: Usage) -> None:
        """Count one completed request, and charge its cost to the budget."""
        self.usage += usage
        cost = self.cost_of(usage)
        self.cost_usd = add_cost(self.cost_usd, cost)
        if self._budget is not None:
            self._budget.charge(cost)

    def add_child(self, result: RunResult) -> None:
        self.usage += result.usage
        self.cost_usd = add_cost(self.cost_usd, result.cost_usd)
