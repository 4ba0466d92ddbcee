"""The process directory: the one place that decides which process a call reaches and who owns it.

It puts the table of live processes (handles.py) and the state database (store.py, with
--state) together: a process not in memory is restored from the database when its caller
may use it, a caller's default process survives a restart, and every step a process takes
is stored before the client hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import anyio

from ..errors import LLMProcError, RequestError
from ..process import LLMProcess
from ..program import LLMProgram
from ..store import Persisted, ProcessStore
from .catalog import Catalog, PublishedProgram
from .handles import Handle, Owner, ProcessTable

log = logging.getLogger("llmproc.mcp_server")


class ProcessDirectory:
    def __init__(
        self, table: ProcessTable, store: ProcessStore | None, catalog: Callable[[], Catalog]
    ) -> None:
        """`catalog` is read on each use: a reload publishes a new one."""
        self.table = table
        self.store = store
        self._catalog = catalog
        self.boot = secrets.token_hex(8)  # this server start, recorded with session owners
        self._restoring = asyncio.Lock()
        self._last_sweep = 0.0

    # -- finding ---------------------------------------------------------------------------------

    def published(self, name: str) -> PublishedProgram:
        """The published program `name` (or `run_<name>`), or an error naming the close matches."""
        programs = self._catalog().programs
        key = name.removeprefix("run_")
        published = programs.get(key)
        if published is None:
            close = difflib.get_close_matches(key, list(programs), n=1, cutoff=0.7)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise RequestError(f"unknown program '{name}'{hint} (programs: {', '.join(sorted(programs))})")
        return published

    async def get(self, process_id: str, owner: Owner) -> Handle:
        """The caller's process: in memory, else (with --state) restored from the database."""
        if self.store is not None and process_id not in self.table:
            async with self._restoring:
                if process_id not in self.table:
                    handle = await self._restore(process_id, owner)
                    if handle is not None:
                        return handle
        return self.table.get(process_id, owner)

    async def default(self, owner: Owner, name: str, program: LLMProgram) -> Handle:
        """The caller's conversation with program `name`: the one it had (even before a
        restart, with --state), else a new one."""
        if self.store is not None and owner is not None and self.table.default_id(owner, name) is None:
            stored_id = await self.store.default(owner, name)
            if stored_id is not None:
                with contextlib.suppress(LLMProcError):  # gone, or no longer this caller's
                    handle = await self.get(stored_id, owner)
                    if handle.program == name:
                        self.table.set_default(owner, name, handle)
                        return handle
        known = self.table.default_id(owner, name)
        handle = self.table.default(owner, name, program)
        if self.store is not None and handle.id != known and owner is not None:
            await self.persist(handle)
            await self.store.set_default(owner, name, handle.id)
        return handle

    def create(
        self, name: str, program: LLMProgram, owner: Owner, *, process: LLMProcess | None = None
    ) -> Handle:
        return self.table.create(name, program, owner, process=process)

    async def remove(self, handle: Handle) -> None:
        await self.table.remove(handle)

    async def described(self, owner: Owner) -> list[dict[str, Any]]:
        """The caller's processes: those in memory, and (with --state) those only on disk."""
        found = [h.describe() for h in self.table.owned_by(owner)]
        if self.store is not None and owner is not None:
            for stored in await self.store.owned(owner):
                if stored.process_id not in self.table:
                    found.append(stored.describe())
        return found

    # -- storing ---------------------------------------------------------------------------------

    async def persist(self, handle: Handle) -> None:
        """Write what the process's last step changed (one transaction), before the client hears of it."""
        if self.store is None:
            return
        record = handle.persisted.record(
            handle.process, program=handle.program, owner=handle.owner, boot=self.boot, turns=handle.turns
        )
        try:
            await self.store.commit(record)
        except Exception as err:  # a full disk, a locked file: never report as done what is not kept
            log.error("process %s could not be saved to the state database: %s", handle.id, err)
            raise RequestError(
                f"process '{handle.id}' could not be saved to the state database: {err}"
            ) from None
        handle.persisted.committed(record)

    async def commit_turn(self, handle: Handle, length_before: int) -> None:
        """Count and store a completed run; when the store can not keep it, the process goes
        back to where it was before the run, and the caller hears that the turn failed."""
        handle.turns += 1
        try:
            await self.persist(handle)
        except RequestError as err:
            handle.turns -= 1
            history = handle.process.history_view()
            if len(history) > length_before:
                handle.process.goto(history[length_before].id)
            raise RequestError(f"{err}; the conversation is as it was before this message") from None

    async def _restore(self, process_id: str, owner: Owner) -> Handle | None:
        """A stored process the caller may use, back in memory; None when it is not theirs or unknown.

        Connection and session owners end with the server start that recorded them, so a process
        whose owner was such a session of an earlier start belongs to whoever holds its
        unguessable id (as under the session-less 2026 protocol)."""
        assert self.store is not None
        stored = await self.store.load(process_id)
        if stored is None or stored.document is None:
            return None
        if stored.owner is not None and stored.owner != owner:
            from_earlier_session = stored.owner.startswith(("sse:", "http:")) and stored.boot != self.boot
            if not from_earlier_session:
                return None
        published = self._catalog().programs.get(stored.program)
        if published is None:
            raise RequestError(
                f"process '{process_id}' runs program '{stored.program}', no longer published here"
            )
        try:
            process = LLMProcess.restore(stored.document, published.program)
        except LLMProcError as err:
            raise RequestError(f"process '{process_id}' can not be restored: {err}") from None
        new_owner = owner if stored.owner is not None else None
        handle = self.table.create(stored.program, published.program, new_owner, process=process)
        handle.turns = stored.turns
        handle.persisted = Persisted.of(process)
        if new_owner != stored.owner or stored.boot != self.boot:
            await self.store.set_owner(process_id, new_owner, self.boot)
        log.info("process %s restored from the state database (%d messages)", process_id, stored.length)
        return handle

    # -- letting go ------------------------------------------------------------------------------

    async def evict_idle(self, *, now: bool = False) -> None:
        """Close idle processes; at most once a second on the call path (the scan visits them all)."""
        clock = time.monotonic()
        if not now and clock - self._last_sweep < 1.0 and not self.table.evicted:
            return
        self._last_sweep = clock
        gone, self.table.evicted = [*self.table.evict_idle(), *self.table.evicted], []
        for handle in gone:
            await handle.process.aclose()
            log.info("process %s left memory (idle, or pushed out for a newer one)", handle.id)

    async def evict_forever(self) -> None:
        """Idle processes leave memory even when no call comes along to notice them."""
        interval = max(0.5, min(60.0, self.table.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            await self.evict_idle(now=True)

    async def release(self, owner: str) -> None:
        """An ended session's processes leave memory now (with --state they stay on disk)."""
        for handle in self.table.release(owner):
            await handle.process.wait_idle()  # its runs were cancelled with the session
            await handle.process.aclose()

    async def aclose(self) -> None:
        """Close every process (and so the MCP servers they use), all at once: each MCP server
        may take its grace period to stop, and a stopping server should not add them up."""
        async with anyio.create_task_group() as closing:
            for handle in self.table.handles():
                closing.start_soon(self.table.remove, handle)
