"""Conversation handles: which processes exist, who owns each, and each caller's default.

A process belongs to the caller that created it (a connection, a 2025-era HTTP session,
or an authenticated principal); others are told it is unknown, exactly as for an id that
never existed, so ids leak nothing. A caller with no identity (a 2026-era HTTP request
without a session) owns nothing: its processes are reached by their unguessable id alone.
Idle processes are evicted, and caps stop unbounded growth: one per owner, and one for all
callers without an identity together, whose spawns never push out a process that a
session owns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import RequestError
from ..process import LLMProcess
from ..program import LLMProgram
from ..store import Lease, Persisted, iso_utc

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
    lease: Lease | None = None
    """The process's lease while a call of this server changes it (with --state)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One leased call at a time per process in this server (each takes a new token)."""

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
    def __init__(
        self,
        *,
        max_per_caller: int = 100,
        idle_seconds: float = 3600.0,
        max_live: int = 10_000,
        max_sessionless: int = 1000,
    ) -> None:
        self.max_per_caller = max_per_caller
        self.max_sessionless = max_sessionless
        """Live processes all callers without an identity may keep together."""
        self.idle_seconds = idle_seconds
        self.max_live = max_live
        """Processes kept in memory in all; past it the least recently used idle one leaves."""
        self._handles: dict[str, Handle] = {}
        self._defaults: dict[tuple[str, str], str] = {}
        self._owned: dict[str, set[str]] = {}  # owner -> process ids: O(1) caps and releases
        self._sessionless: set[str] = set()  # ids of processes no one owns
        self.evicted: list[Handle] = []
        """Handles pushed out by max_live, for the server to close."""

    def __contains__(self, process_id: str) -> bool:
        return process_id in self._handles

    def create(
        self, name: str, program: LLMProgram, owner: Owner, *, process: LLMProcess | None = None
    ) -> Handle:
        if owner is not None and len(self._owned.get(owner, ())) >= self.max_per_caller:
            raise RequestError(
                f"you have {self.max_per_caller} live processes, the most one client may keep; "
                "reset some (reset with process_id) or wait for idle ones to expire"
            )
        # a caller without an identity only ever pushes out another such caller's process,
        # never a conversation that a session owns
        may_leave = self._sessionless if owner is None else self._handles.keys()
        if owner is None and len(self._sessionless) >= self.max_sessionless:
            self._push_out(may_leave, f"callers without a session are running {len(self._sessionless)} "
                           "processes, their limit (--max-sessionless-processes)")  # fmt: skip
        if len(self._handles) >= self.max_live:
            self._push_out(may_leave, f"the server is running {len(self._handles)} processes, its limit "
                           "(--max-live-processes)")  # fmt: skip
        handle = Handle(process or LLMProcess(program), name, owner)
        self._handles[handle.id] = handle
        if owner is not None:
            self._owned.setdefault(owner, set()).add(handle.id)
        else:
            self._sessionless.add(handle.id)
        return handle

    def get(self, process_id: str, owner: Owner) -> Handle:
        handle = self._handles.get(process_id)
        if handle is None or (handle.owner is not None and handle.owner != owner):
            raise RequestError(f"unknown process '{process_id}'")
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
        return [self._handles[i] for i in self._owned.get(owner, ())]

    async def remove(self, handle: Handle) -> None:
        self._forget(handle)
        await handle.process.aclose()

    def release(self, owner: str) -> list[Handle]:
        """Forget every process of an owner that is gone (an ended session); the caller closes them."""
        handles = self.owned_by(owner)
        for handle in handles:
            self._forget(handle)
        return handles

    def evict_idle(self) -> list[Handle]:
        """Forget processes idle for longer than the limit (never one that is running)."""
        cutoff = time.time() - self.idle_seconds
        idle = [h for h in self._handles.values() if h.last_used < cutoff and not h.process.running]
        for handle in idle:
            self._forget(handle)
        return idle

    def drop(self, handle: Handle) -> None:
        """Forget a copy that is out of date (another server changed the process); it is closed
        with the evicted ones, once its call has ended."""
        if self._handles.get(handle.id) is handle:
            self._forget(handle)
            self.evicted.append(handle)

    def _push_out(self, may_leave: Iterable[str], full: str) -> None:
        """At a limit, the least recently used idle process of `may_leave` leaves (with --state:
        to the disk) and is kept in `evicted` for the server to close; with none idle, `full`
        is the caller's error."""
        idle = [h for i in may_leave if not (h := self._handles[i]).process.running]
        if not idle:
            raise RequestError(f"{full}; try again when some have finished")
        oldest = min(idle, key=lambda h: h.last_used)
        self._forget(oldest)
        self.evicted.append(oldest)

    def _forget(self, handle: Handle) -> None:
        self._handles.pop(handle.id, None)
        self._sessionless.discard(handle.id)
        if handle.owner is not None:
            owned = self._owned.get(handle.owner)
            if owned is not None:
                owned.discard(handle.id)
                if not owned:
                    del self._owned[handle.owner]
            key = (handle.owner, handle.program)
            if self._defaults.get(key) == handle.id:
                del self._defaults[key]

    def __len__(self) -> int:
        return len(self._handles)

    def handles(self) -> list[Handle]:
        """Every process in memory."""
        return list(self._handles.values())
