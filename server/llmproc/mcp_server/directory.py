"""The process directory: the one place that decides which process a call reaches and who owns it.

It puts the table of live processes (handles.py) and the state database (store.py, with
--state) together: a process not in memory is restored from the database when its caller
may use it, a caller's default process survives a restart, and every step a process takes
is stored before the client hears of it.

Servers sharing a database (replicas, --workers) take turns on a process through its lease:
a call that changes a process holds the lease from start to commit, renewing it, and waits
(up to `lease_wait` seconds) while another server holds it. A copy in memory whose version is
older than the stored one is loaded again first; a commit whose lease was taken over is
refused by the store, and this server forgets its copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from ..errors import LeaseLost, LLMProcError, RequestError, StoreError
from ..process import LLMProcess
from ..program import LLMProgram
from ..store import Lease, Persisted, ProcessStore
from .callers import LEGACY_STDIO_OWNER
from .catalog import Catalog, PublishedProgram
from .handles import Handle, Owner, ProcessTable

log = logging.getLogger("llmproc.mcp_server")


class ProcessDirectory:
    def __init__(
        self,
        table: ProcessTable,
        store: ProcessStore | None,
        catalog: Callable[[], Catalog],
        *,
        lease_seconds: float = 30.0,
        lease_wait: float = 30.0,
    ) -> None:
        """`catalog` is read on each use: a reload publishes a new one."""
        self.table = table
        self.store = store
        self._catalog = catalog
        self.boot = secrets.token_hex(8)  # this server start, recorded with session owners
        self.holder = f"{socket.gethostname()} pid {os.getpid()} start {self.boot}"
        """Who this server is, in leases (unique per start, readable in a busy error)."""
        self.lease_seconds = lease_seconds
        self.lease_wait = lease_wait
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
            with _storing("the state database can not be read"):
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
            with _storing("the state database can not keep your conversation"):
                await self.store.set_default(owner, name, handle.id)
        return handle

    def create(
        self, name: str, program: LLMProgram, owner: Owner, *, process: LLMProcess | None = None
    ) -> Handle:
        return self.table.create(name, program, owner, process=process)

    async def remove(self, handle: Handle) -> None:
        await self.table.remove(handle)

    async def owned(self, owner: Owner, program: str | None = None) -> list[Handle]:
        """The caller's processes (of `program`), in memory or restored from the store: every
        server's, not only the ones this server happens to hold."""
        handles = [h for h in self.table.owned_by(owner) if program is None or h.program == program]
        if self.store is not None and owner is not None:
            with _storing("the state database can not list your processes"):
                stored = await self.store.owned(owner)
            for found in stored:
                if found.process_id not in self.table and program in (None, found.program):
                    with contextlib.suppress(LLMProcError):  # gone, or its program is unpublished
                        handles.append(await self.get(found.process_id, owner))
        return handles

    async def described(self, owner: Owner) -> list[dict[str, Any]]:
        """The caller's processes: those in memory, and (with --state) those only on disk."""
        if self.store is None or owner is None:
            return [h.describe() for h in self.table.owned_by(owner)]
        with _storing("the state database can not list your processes"):
            stored = await self.store.owned(owner)
        found = [s.describe() for s in stored]  # what every server sees, not this one's copies
        known = {s.process_id for s in stored}
        found += [h.describe() for h in self.table.owned_by(owner) if h.id not in known]
        return found

    # -- storing ---------------------------------------------------------------------------------

    async def persist(self, handle: Handle, *, last: bool = False) -> None:
        """Write what the process's last step changed (one transaction), before the client hears
        of it. `last`: the call's final commit, which also gives its lease back."""
        if self.store is None:
            return
        lease = handle.lease
        record = handle.persisted.record(
            handle.process, program=handle.program, owner=handle.owner, boot=self.boot,
            turns=handle.turns, token=lease.token if lease else None, release=last and lease is not None,
        )  # fmt: skip
        try:
            version = await self.store.commit(record)
        except LeaseLost as err:  # another server has a newer copy: this one is of no more use
            log.warning("process %s: %s", handle.id, err)
            self.table.drop(handle)
            raise RequestError(str(err)) from None
        except Exception as err:  # a full disk, a database down: never report as done what is not kept
            log.error("process %s could not be saved to the state database: %s", handle.id, err)
            raise RequestError(
                f"process '{handle.id}' could not be saved to the state database: {err}"
            ) from None
        handle.persisted.committed(record, version)
        if record.release:
            handle.lease = None  # given back: leased() has nothing left to release

    @contextlib.asynccontextmanager
    async def leased(self, handle: Handle) -> AsyncIterator[Handle]:
        """Hold the process's lease while a call changes it: taken (waiting while another server
        holds it), renewed while the call runs, given back at the end. A copy in memory older
        than the stored process is loaded again first. Without a store, there is nothing to do."""
        if self.store is None:
            yield handle
            return
        async with handle.lock:
            lease = await self._acquire(handle.id)
            renewing = asyncio.create_task(self._renew(lease))
            try:
                if lease.version != handle.persisted.version:
                    await self._refresh(handle, lease.version)
                handle.lease = lease
                yield handle
            finally:
                held, handle.lease = handle.lease, None
                renewing.cancel()
                if held is not None:  # not given back with the last commit
                    with anyio.CancelScope(shield=True), contextlib.suppress(StoreError):
                        await self.store.release(held)

    async def current(self, handle: Handle) -> Handle:
        """The handle, its process loaded again if another server changed it since (a read)."""
        if self.store is not None and handle.lease is None:
            with _storing(f"process '{handle.id}' can not be read from the state database"):
                version = await self.store.version(handle.id)
            if version != handle.persisted.version:
                await self._refresh(handle, version)
        return handle

    async def _acquire(self, process_id: str) -> Lease:
        assert self.store is not None
        deadline, pause = time.monotonic() + self.lease_wait, 0.02
        while True:
            with _storing(f"process '{process_id}' can not be used now"):
                got = await self.store.acquire(process_id, self.holder, self.lease_seconds)
            if isinstance(got, Lease):
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestError(
                    f"process '{process_id}' is busy: another server ({got.holder}) is running a "
                    f"turn on it, and it did not finish within {self.lease_wait:g} s; try again later"
                )
            await asyncio.sleep(min(pause, left, got.seconds_left + 0.01))
            pause = min(pause * 2, 0.5)

    async def _renew(self, lease: Lease) -> None:
        """Keep the lease while the call runs: renewed three times per lease period."""
        assert self.store is not None
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                renewed = await self.store.renew(lease, self.lease_seconds)
            except StoreError as err:  # down for now: the commit will say whether it was lost
                log.warning("process %s: lease not renewed: %s", lease.process_id, err)
                continue
            if not renewed:
                log.warning(
                    "process %s: its lease expired before it was renewed (this server was paused or "
                    "cut off); if another server took the process over, this turn will not be saved",
                    lease.process_id,
                )  # fmt: skip
                return

    async def _refresh(self, handle: Handle, version: int) -> None:
        """Load the stored process into `handle`: another server changed it since this copy.
        Only what this copy lacks is read when its history is still the stored one's start."""
        assert self.store is not None
        known, history = handle.persisted.message_ids, handle.process.history_view()
        after = None
        if known and len(history) >= len(known) and history[len(known) - 1].id == known[-1]:
            after = (len(known), known[-1])
        with _storing(f"process '{handle.id}' can not be read from the state database"):
            stored = await self.store.load(handle.id, after)
        if stored is None or stored.document is None:
            return
        try:
            process = LLMProcess.restore(
                stored.document, handle.process.program, known_messages=history[: stored.tail_from]
            )
        except LLMProcError as err:
            raise RequestError(f"process '{handle.id}' can not be restored: {err}") from None
        stale, handle.process = handle.process, process
        handle.turns = stored.turns
        handle.persisted = Persisted.of(process, stored.version)
        await stale.aclose()
        log.info(
            "process %s loaded again: another server changed it (version %d, this copy was %d; "
            "%d messages read)", handle.id, stored.version, version, stored.length - stored.tail_from,
        )  # fmt: skip

    async def commit_turn(self, handle: Handle, length_before: int) -> None:
        """Count and store a completed run; when the store can not keep it, the process goes
        back to where it was before the run, and the caller hears that the turn failed."""
        handle.turns += 1
        try:
            await self.persist(handle, last=True)
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
        with _storing(f"process '{process_id}' can not be read from the state database"):
            stored = await self.store.load(process_id)
        if stored is None or stored.document is None:
            return None
        if stored.owner is not None and stored.owner != owner:
            from_earlier_session = stored.owner.startswith(("sse:", "http:")) and stored.boot != self.boot
            from_older_stdio = stored.owner == LEGACY_STDIO_OWNER and str(owner).startswith("stdio:")
            if not (from_earlier_session or from_older_stdio):
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
        handle.persisted = Persisted.of(process, stored.version)
        if new_owner != stored.owner or stored.boot != self.boot:
            with _storing(f"process '{process_id}' can not be restored"):
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


@contextlib.contextmanager
def _storing(what: str) -> Any:
    """A store that fails (a database down) is the caller's one-line error, saying what failed."""
    try:
        yield
    except StoreError as err:
        raise RequestError(f"{what}: {err}") from None
