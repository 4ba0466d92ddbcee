"""Usage counters and the RunResult a run returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Usage:
    """Token counts. `input_tokens` excludes tokens read from or written to the prompt cache."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call made during a run, with a short form of its result."""

    id: str
    name: str
    arguments: dict[str, Any]
    result: str
    is_error: bool
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ChildRecord:
    """A child process a run started (spawn or the fork tool), kept after the child is closed so
    what each expert cost stays visible: its program, totals and its own children."""

    kind: str
    """"spawn" or "fork"."""
    process_id: str
    program: str
    tool_call_id: str
    """The tool call that started it: the record lives as long as that call is in the history."""
    usage: Usage
    cost_usd: float | None
    children: tuple[ChildRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "process_id": self.process_id,
            "program": self.program,
            "tool_call_id": self.tool_call_id,
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
            "children": [c.to_dict() for c in self.children],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChildRecord:
        usage = data.get("usage") or {}
        cost = data.get("cost_usd")
        return cls(
            kind=str(data.get("kind", "spawn")),
            process_id=str(data.get("process_id", "")),
            program=str(data.get("program", "")),
            tool_call_id=str(data.get("tool_call_id", "")),
            usage=Usage(**{k: int(v) for k, v in usage.items() if k in Usage.__slots__}),
            cost_usd=float(cost) if cost is not None else None,
            children=tuple(cls.from_dict(c) for c in data.get("children") or ()),
        )


@dataclass(slots=True)
class RunResult:
    """What one `run()` produced. `str(result)` is the final assistant text."""

    text: str
    process_id: str
    stop_reason: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    iterations: int = 0
    children: list[ChildRecord] = field(default_factory=list)
    """The child processes this run started, each with its cost."""

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id,
            "text": self.text,
            "stop_reason": self.stop_reason,
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "iterations": self.iterations,
            "children": [c.to_dict() for c in self.children],
        }


def add_cost(a: float | None, b: float | None) -> float | None:
    """Costs add up; one unknown cost makes the sum unknown (never a false zero)."""
    return None if a is None or b is None else a + b
