"""Conversation handles: which processes exist, who owns each, and each caller's default.

A process belongs to the caller that created it (a connection, a 2025-era HTTP session,
or an authenticated principal); others are told it is unknown, exactly as for an id that
never existed, so ids leak nothing. A caller with no identity (a 2026-era HTTP request
without a session) owns nothing: its processes are reached by their unguessable id alone.
Idle processes are evicted, and a per-caller cap stops unbounded growth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import ToolError
from ..process import LLMProcess
from ..program import LLMProgram
from ..store import Persisted, iso_utc

Owner = str | None


@dataclass(eq=False)
class Handle:
    process: LLMProcess
    program: str
    owner: Owner
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    turns: int = 0
    persisted: Persisted = field(default_factory=Persisted)
    """What the state database holds of the process (with --state)."""

    @property
    def id(self) -> str:
        return self.process.id

    def describe(self) -> dict[str, object]:
        return {
            "process_id": self.id,
            "program": self.program,
            "turns": self.turns,
            "messages": len(self.process.messages),
            "cost_usd": self.process.cost_usd,
            "created": iso_utc(self.created),
            "last_activity": iso_utc(self.last_used),
            "parent_id": self.process.parent_id,
        }


class ProcessTable:
    def __init__(self, *, max_per_caller: int = 100, idle_seconds: float = 3600.0) -> None:
        self.max_per_caller = max_per_caller
        self.idle_seconds = idle_seconds
        self._handles: dict[str, Handle] = {}
        self._defaults: dict[tuple[str, str], str] = {}

    def __contains__(self, process_id: str) -> bool:
        return process_id in self._handles

    def create(
        self, name: str, program: LLMProgram, owner: Owner, *, process: LLMProcess | None = None
    ) -> Handle:
        if (
            owner is not None
            and sum(1 for h in self._handles.values() if h.owner == owner) >= self.max_per_caller
        ):
            raise ToolError(
                f"you have {self.max_per_caller} live processes, the most one client may keep; "
                "reset some (reset with process_id) or wait for idle ones to expire"
            )
        handle = Handle(process or LLMProcess(program), name, owner)
        self._handles[handle.id] = handle
        return handle

    def get(self, process_id: str, owner: Owner) -> Handle:
        handle = self._handles.get(process_id)
        if handle is None or (handle.owner is not None and handle.owner != owner):
            raise ToolError(f"unknown process '{process_id}'")
        return handle

    def default_id(self, owner: Owner, name: str) -> str | None:
        """The id of the caller's default process for `name`, if it is in memory."""
        found = self._defaults.get((owner, name)) if owner is not None else None
        return found if found in self._handles else None

    def set_default(self, owner: str, name: str, handle: Handle) -> None:
        self._defaults[(owner, name)] = handle.id

    def default(self, owner: Owner, name: str, program: LLMProgram) -> Handle:
        """The caller's process for `name`: created on first use; without an identity, always new."""
        if owner is not None:
            found = self._handles.get(self._defaults.get((owner, name), ""))
            if found is not None:
                return found
        handle = self.create(name, program, owner)
        if owner is not None:
            self._defaults[(owner, name)] = handle.id
        return handle

    def owned_by(self, owner: Owner) -> list[Handle]:
        if owner is None:
            return []
        return [h for h in self._handles.values() if h.owner == owner]

    async def remove(self, handle: Handle) -> None:
        self._handles.pop(handle.id, None)
        self._defaults = {k: v for k, v in self._defaults.items() if v != handle.id}
        await handle.process.aclose()

    def evict_idle(self) -> list[Handle]:
        """Forget processes idle for longer than the limit (never one that is running)."""
        cutoff = time.time() - self.idle_seconds
        idle = [h for h in self._handles.values() if h.last_used < cutoff and not h.process.running]
        for handle in idle:
            self._handles.pop(handle.id, None)
        if idle:
            gone = {h.id for h in idle}
            self._defaults = {k: v for k, v in self._defaults.items() if v not in gone}
        return idle

    def __len__(self) -> int:
        return len(self._handles)
