"""The limits of a process tree: how deep it may nest, how many children a turn may start,
what its tools may do, and what it may spend. A process never gets more than its parent allows."""

from __future__ import annotations

from dataclasses import dataclass

from .budget import CostBudget
from .config import LimitsConfig
from .tools.base import lowest


@dataclass(frozen=True, slots=True)
class Limits:
    depth: int
    """How deeply the process is nested (0: started by a person or a server)."""
    config: LimitsConfig
    """The effective limits: the program's own, lowered to what the parent allows."""
    budget: CostBudget | None


def limits_for(config: LimitsConfig, parent: Limits | None, nested: bool) -> Limits:
    """The limits of a process of a program with `config`: a child of `parent` (nested: spawn,
    the fork tool) or a copy of it (not nested: `fork()`), or a process of its own."""
    if parent is None:
        budget = CostBudget(config.cost_budget_usd) if config.cost_budget_usd else None
        return Limits(0, config, budget)
    if not nested:
        return parent
    depth = parent.depth + 1
    limits = config.model_copy(
        update={
            "max_depth": min(parent.config.max_depth, depth + config.max_depth),
            "max_children_per_turn": min(parent.config.max_children_per_turn, config.max_children_per_turn),
            "max_access": lowest(parent.config.max_access, config.max_access),
        }
    )
    budget = CostBudget(config.cost_budget_usd, parent.budget) if config.cost_budget_usd else parent.budget
    return Limits(depth, limits, budget)
