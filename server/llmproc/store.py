"""Where a server keeps its processes between turns and across restarts.

`ProcessStore` is the whole contract: a few async calls on plain JSON-able data, so a shared
database can implement it for replicas behind a load balancer (store_postgres.py does).
`SqliteStore` is the embedded implementation (standard library `sqlite3`, WAL mode). Each
completed turn is one transaction that appends the turn's messages and rewrites only the
small header row: the cost of persisting a turn does not grow with the history.
`Persisted` works out what a process added since its last commit.

Several servers may share one store. Each process has a lease (holder, expiry, fencing token)
that a server takes when a call starts and renews while it runs, and a version that grows with
every commit. A commit names the lease token it was made under and the version it built on;
the store refuses it (`LeaseLost`) when either is stale, so a server that lost its lease
(paused, partitioned, slow) never overwrites a newer turn, and a server whose copy in memory
is older than the store's loads the process again before it runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import LeaseLost, StoreError
from .snapshot import descriptors_to_json, header, message_to_json
from .task_store import TASK_COLUMNS, TaskRecord, TaskStore, record_from_row

if TYPE_CHECKING:
    from .process import LLMProcess

SCHEMA_NAME = "llmproc-state"
SCHEMA_VERSION = 3
"""1: processes, messages, descriptors, defaults. 2: a version per process, and leases.
3: tasks (task_store.py)."""


@dataclass
class TurnRecord:
    """What one commit writes: the history after `keep` stored messages is replaced by `messages`."""

    process_id: str
    program: str
    owner: str | None
    boot: str
    """The server start that recorded `owner` (connection and session owners end with it)."""
    turns: int
    header: dict[str, Any]
    keep: int
    messages: list[dict[str, Any]]
    descriptors: dict[str, dict[str, str]]
    base: int = 0
    """The stored version this commit builds on (0: the process is not stored yet)."""
    token: int | None = None
    """The fencing token of the lease it was made under; None for a process no one else can
    know of yet (just created: its id has not left this server)."""
    release: bool = False
    """Give the lease back in the same transaction: the call's last commit (one round trip less)."""


@dataclass
class StoredProcess:
    process_id: str
    program: str
    owner: str | None
    boot: str
    turns: int
    created: float
    updated: float
    length: int
    """Messages in the history."""
    header: dict[str, Any]
    version: int = 0
    document: dict[str, Any] | None = None
    """The snapshot document (header, messages, descriptors), when loaded."""
    tail_from: int = 0
    """The document's messages start at this one (loaded `after` the caller's first messages)."""

    def describe(self) -> dict[str, object]:
        """As the server's list_processes shows a process (this one is on disk, not in memory)."""
        return {
            "process_id": self.process_id,
            "program": self.program,
            "turns": self.turns,
            "messages": self.length,
            "cost_usd": self.header.get("cost_usd"),
            "created": iso_utc(self.created),
            "last_activity": iso_utc(self.updated),
            "parent_id": self.header.get("parent_id"),
        }


@dataclass(frozen=True)
class Lease:
    """The right to change one process, until `expires` (the store's clock) unless renewed."""

    process_id: str
    holder: str
    token: int
    """Grows with every new holder: the fencing token a commit must carry."""
    version: int
    """The process's stored version when the lease was taken (0: not stored)."""


@dataclass(frozen=True)
class Held:
    """Someone else's live lease on a process: who, and for how many more seconds at most."""

    holder: str
    seconds_left: float


def iso_utc(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


class ProcessStore(TaskStore, Protocol):
    async def commit(self, record: TurnRecord) -> int:
        """Write one turn atomically (all of it or none of it) and return the new version;
        `LeaseLost` when the record's token or base version is stale (nothing written)."""

    async def load(self, process_id: str, after: tuple[int, str] | None = None) -> StoredProcess | None:
        """The process with its snapshot document, or None. `after=(n, id)`: the caller has the
        first n messages, the last with that id; when the stored history still starts so, the
        document holds only the messages after them (`tail_from` = n), else all of them."""

    async def version(self, process_id: str) -> int:
        """The process's stored version (0: not stored): is a copy in memory current?"""

    async def acquire(self, process_id: str, holder: str, seconds: float) -> Lease | Held:
        """Take the process's lease for `seconds` (a new token), or say who holds it."""

    async def renew(self, lease: Lease, seconds: float) -> bool:
        """Extend a live lease; False when it expired or was given back or taken over."""

    async def release(self, lease: Lease) -> None:
        """Give a lease back, so the next server need not wait for it to expire."""

    async def set_owner(self, process_id: str, owner: str | None, boot: str) -> None: ...

    async def set_default(self, owner: str, program: str, process_id: str) -> None:
        """Remember the caller's default process for a program."""

    async def default(self, owner: str, program: str) -> str | None: ...

    async def owned(self, owner: str) -> list[StoredProcess]:
        """Summaries (no documents) of the processes `owner` holds."""

    async def close(self) -> None: ...


def stale_lease(process_id: str) -> LeaseLost:
    return LeaseLost(
        f"process '{process_id}' was taken over by another server while this one ran it "
        "(its lease expired); nothing of this turn was saved"
    )


def stale_version(process_id: str, stored: int, base: int) -> LeaseLost:
    return LeaseLost(
        f"process '{process_id}' changed in the state database since this server loaded it "
        f"(version {stored}, not {base}); nothing of this turn was saved"
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS llmproc_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS processes (
    id TEXT PRIMARY KEY, program TEXT NOT NULL, owner TEXT, boot TEXT NOT NULL,
    turns INTEGER NOT NULL, header TEXT NOT NULL, length INTEGER NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS processes_by_owner ON processes (owner);
CREATE TABLE IF NOT EXISTS messages (
    process_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (process_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS descriptors (
    process_id TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (process_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS defaults (
    owner TEXT NOT NULL, program TEXT NOT NULL, process_id TEXT NOT NULL, PRIMARY KEY (owner, program)
) WITHOUT ROWID;
"""

_MIGRATIONS = {
    1: """
ALTER TABLE processes ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
CREATE TABLE leases (
    process_id TEXT PRIMARY KEY, holder TEXT NOT NULL, token INTEGER NOT NULL, expires REAL NOT NULL
) WITHOUT ROWID;
""",
    2: """
CREATE TABLE tasks (
    id TEXT PRIMARY KEY, owner TEXT, tool TEXT NOT NULL, era TEXT NOT NULL, status TEXT NOT NULL,
    message TEXT, created REAL NOT NULL, updated REAL NOT NULL, ttl_ms INTEGER NOT NULL,
    body TEXT NOT NULL, holder TEXT NOT NULL, cancel INTEGER NOT NULL DEFAULT 0,
    alive_until REAL NOT NULL, expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX tasks_by_owner ON tasks (owner, created);
CREATE INDEX tasks_by_expiry ON tasks (expires);
""",
}
"""From each format to the next. Lease rows are never deleted: a token must never repeat."""


class SqliteStore:
    """The embedded store: one file, WAL mode, one transaction per completed turn.

    sqlite3 is synchronous, so calls run in a thread of the store's own (one at a time) and
    the event loop keeps serving while a commit waits for the disk; tools or DNS look-ups
    that tie up other threads can not hold a commit back. Several servers (or --workers) may
    share the file: writes take SQLite's write lock (BEGIN IMMEDIATE, waiting up to
    `BUSY_SECONDS` for it) and leases keep them off each other's processes.
    """

    BUSY_SECONDS = 10.0

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = self._open()
        self._durable = True
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="llmproc-store")

    def _open(self) -> sqlite3.Connection:
        where = f"state database {self.path}"
        if self.path.is_dir():
            raise StoreError(f"{where} is a directory; give a file path to --state")
        try:  # conversations are private: a new file is its owner's alone (SQLite's -wal and
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # -shm files follow it)
        except OSError as err:
            raise StoreError(f"can not open {where}: {err.strerror or err}") from None
        try:
            db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=self.BUSY_SECONDS
            )
        except sqlite3.Error as err:
            raise StoreError(f"can not open {where}: {err}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed turn survives a power cut too
            db.execute("BEGIN IMMEDIATE")  # servers starting together create the schema in turn
            try:
                self._prepare(db, where)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{where} is damaged ({check}); restore a backup or start a new file")
        except sqlite3.DatabaseError as err:
            db.close()
            if "malformed" in str(err):
                raise StoreError(
                    f"{where} is damaged ({err}); restore a backup or start a new file"
                ) from None
            raise StoreError(f"{where} is not usable: {err} (is it an SQLite database?)") from None
        except StoreError:
            db.close()
            raise
        return db

    @staticmethod
    def _prepare(db: sqlite3.Connection, where: str) -> None:
        """Create the schema, or check it and bring it up to this version."""
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "llmproc_meta" not in tables:
            raise StoreError(
                f"{where} belongs to another application (tables: {', '.join(sorted(tables))}); "
                "choose another --state path"
            )
        for statement in _statements(_SCHEMA):
            db.execute(statement)
        meta = dict(db.execute("SELECT key, value FROM llmproc_meta").fetchall())
        if not meta:
            meta = {"schema": SCHEMA_NAME, "version": "1"}
            db.executemany("INSERT INTO llmproc_meta VALUES (?, ?)", list(meta.items()))
        if meta.get("schema") != SCHEMA_NAME:
            raise StoreError(f"{where} is not an llmproc state database; choose another --state path")
        version = int(meta.get("version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{where} was written by a newer llmproc (format {version}, this one reads "
                f"up to {SCHEMA_VERSION}); upgrade llmproc"
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in _statements(_MIGRATIONS[step]):
                db.execute(statement)
        db.execute("UPDATE llmproc_meta SET value = ? WHERE key = 'version'", (str(SCHEMA_VERSION),))

    async def _call(self, function: Any, *args: Any, write: bool = True, durable: bool = True) -> Any:
        """`durable=False`: a lease's write, not worth waiting for the disk (a later turn's
        commit makes it durable with everything before it, as the WAL is written in order)."""

        def locked() -> Any:
            with self._lock:
                if write and durable != self._durable:
                    self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                    self._durable = durable
                return self._transaction(function, args, "BEGIN IMMEDIATE" if write else "BEGIN")

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, locked)
        except sqlite3.OperationalError as err:  # locked past BUSY_SECONDS, a full disk, I/O
            raise StoreError(f"state database {self.path} failed: {err}") from None

    def _transaction(self, function: Any, args: tuple[Any, ...], begin: str) -> Any:
        """Run `function` in one transaction: all of its writes or none, reads of one moment."""
        db = self._db
        db.execute(begin)
        try:
            result = function(*args)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return result

    def _stored_version(self, process_id: str) -> int:
        row = self._db.execute("SELECT version FROM processes WHERE id = ?", (process_id,)).fetchone()
        return int(row[0]) if row else 0

    # -- writes --------------------------------------------------------------------------------

    def _commit(self, record: TurnRecord) -> int:
        db, now, pid = self._db, time.time(), record.process_id
        if record.token is not None:
            row = db.execute("SELECT token FROM leases WHERE process_id = ?", (pid,)).fetchone()
            if row is None or row[0] != record.token:
                raise stale_lease(pid)
        stored = self._stored_version(pid)
        if stored != record.base:
            raise stale_version(pid, stored, record.base)
        db.execute("DELETE FROM messages WHERE process_id = ? AND seq >= ?", (pid, record.keep))
        db.executemany(
            "INSERT INTO messages VALUES (?, ?, ?)",
            [(pid, record.keep + i, _json(m)) for i, m in enumerate(record.messages)],
        )
        db.executemany(
            "INSERT OR REPLACE INTO descriptors VALUES (?, ?, ?)",
            [(pid, n, _json(d)) for n, d in record.descriptors.items()],
        )
        db.execute(
            """INSERT INTO processes (id, program, owner, boot, turns, header, length, created,
               updated, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET program = excluded.program, owner = excluded.owner,
               boot = excluded.boot, turns = excluded.turns, header = excluded.header,
               length = excluded.length, updated = excluded.updated, version = excluded.version""",
            (
                pid, record.program, record.owner, record.boot, record.turns, _json(record.header),
                record.keep + len(record.messages), now, now, stored + 1,
            ),
        )  # fmt: skip
        if record.release and record.token is not None:
            db.execute(
                "UPDATE leases SET expires = 0 WHERE process_id = ? AND token = ?", (pid, record.token)
            )
        return stored + 1

    async def commit(self, record: TurnRecord) -> int:
        version: int = await self._call(self._commit, record)
        return version

    def _acquire(self, process_id: str, holder: str, seconds: float) -> Lease | Held:
        now = time.time()
        row = self._db.execute(
            "SELECT holder, token, expires FROM leases WHERE process_id = ?", (process_id,)
        ).fetchone()
        if row is not None and row[2] > now and row[0] != holder:
            return Held(row[0], row[2] - now)
        token = (row[1] if row else 0) + 1
        self._db.execute(
            "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (process_id, holder, token, now + seconds)
        )
        return Lease(process_id, holder, token, self._stored_version(process_id))

    async def acquire(self, process_id: str, holder: str, seconds: float) -> Lease | Held:
        lease: Lease | Held = await self._call(self._acquire, process_id, holder, seconds, durable=False)
        return lease

    def _renew(self, lease: Lease, seconds: float) -> bool:
        now = time.time()  # an expired lease is not renewed: another server may hold it by now
        updated = self._db.execute(
            "UPDATE leases SET expires = ? WHERE process_id = ? AND token = ? AND expires > ?",
            (now + seconds, lease.process_id, lease.token, now),
        )
        return updated.rowcount == 1

    async def renew(self, lease: Lease, seconds: float) -> bool:
        renewed: bool = await self._call(self._renew, lease, seconds, durable=False)
        return renewed

    async def release(self, lease: Lease) -> None:
        await self._call(
            self._db.execute,
            "UPDATE leases SET expires = 0 WHERE process_id = ? AND token = ?",
            (lease.process_id, lease.token),
            durable=False,
        )

    async def set_owner(self, process_id: str, owner: str | None, boot: str) -> None:
        await self._call(
            self._db.execute,
            "UPDATE processes SET owner = ?, boot = ? WHERE id = ?",
            (owner, boot, process_id),
        )

    async def set_default(self, owner: str, program: str, process_id: str) -> None:
        await self._call(
            self._db.execute, "INSERT OR REPLACE INTO defaults VALUES (?, ?, ?)", (owner, program, process_id)
        )

    # -- reads ---------------------------------------------------------------------------------

    _COLUMNS = "id, program, owner, boot, turns, created, updated, length, header, version"

    @staticmethod
    def _summary(row: tuple[Any, ...]) -> StoredProcess:
        process_id, program, owner, boot, turns, created, updated, length, head, version = row
        return StoredProcess(
            process_id, program, owner, boot, turns, created, updated, length, json.loads(head), version
        )

    def _load(self, process_id: str, after: tuple[int, str] | None) -> StoredProcess | None:
        row = self._db.execute(
            f"SELECT {self._COLUMNS} FROM processes WHERE id = ?", (process_id,)
        ).fetchone()
        if row is None:
            return None
        stored = self._summary(row)
        if after is not None and 0 < after[0] <= stored.length:
            last = self._db.execute(
                "SELECT body FROM messages WHERE process_id = ? AND seq = ?", (process_id, after[0] - 1)
            ).fetchone()
            if last is not None and json.loads(last[0]).get("id") == after[1]:
                stored.tail_from = after[0]
        messages = [
            json.loads(body)
            for (body,) in self._db.execute(
                "SELECT body FROM messages WHERE process_id = ? AND seq >= ? AND seq < ? ORDER BY seq",
                (process_id, stored.tail_from, stored.length),
            )
        ]
        descriptors = {
            name: json.loads(body)
            for name, body in self._db.execute(
                "SELECT name, body FROM descriptors WHERE process_id = ?", (process_id,)
            )
        }
        stored.document = {**stored.header, "messages": messages, "file_descriptors": descriptors}
        return stored

    async def load(self, process_id: str, after: tuple[int, str] | None = None) -> StoredProcess | None:
        return await self._call(self._load, process_id, after, write=False)  # one moment: whole turns

    async def version(self, process_id: str) -> int:
        version: int = await self._call(self._stored_version, process_id, write=False)
        return version

    def _default(self, owner: str, program: str) -> str | None:
        row = self._db.execute(
            "SELECT process_id FROM defaults WHERE owner = ? AND program = ?", (owner, program)
        ).fetchone()
        return row[0] if row else None

    async def default(self, owner: str, program: str) -> str | None:
        return await self._call(self._default, owner, program, write=False)

    def _owned(self, owner: str) -> list[StoredProcess]:
        rows = self._db.execute(f"SELECT {self._COLUMNS} FROM processes WHERE owner = ?", (owner,))
        return [self._summary(row) for row in rows]

    async def owned(self, owner: str) -> list[StoredProcess]:
        return await self._call(self._owned, owner, write=False)

    # -- tasks ---------------------------------------------------------------------------------

    def _save_task(self, record: TaskRecord, alive_seconds: float) -> None:
        now = time.time()
        self._db.execute("DELETE FROM tasks WHERE expires <= ?", (now,))
        self._db.execute(
            "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.task_id, record.owner, record.tool, record.era, record.status, record.message,
                record.created, record.updated, record.ttl_ms, _json(record.body()), record.holder,
                int(record.cancel_requested), now + alive_seconds, record.expires,
            ),
        )  # fmt: skip

    async def save_task(self, record: TaskRecord, alive_seconds: float) -> None:
        await self._call(self._save_task, record, alive_seconds)

    def _load_task(self, task_id: str) -> TaskRecord | None:
        row = self._db.execute(
            f"SELECT {TASK_COLUMNS}, alive_until, expires FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()
        now = time.time()
        if row is None or row[13] <= now:
            return None
        return record_from_row(row, json.loads(row[9]), row[12] > now)

    async def load_task(self, task_id: str) -> TaskRecord | None:
        record: TaskRecord | None = await self._call(self._load_task, task_id, write=False)
        return record

    def _touch_task(self, task_id: str, holder: str, alive_seconds: float) -> bool | None:
        row = self._db.execute(
            """UPDATE tasks SET alive_until = ? WHERE id = ? AND holder = ?
               AND status IN ('working', 'input_required') RETURNING cancel""",
            (time.time() + alive_seconds, task_id, holder),
        ).fetchone()
        return None if row is None else bool(row[0])

    async def touch_task(self, task_id: str, holder: str, alive_seconds: float) -> bool | None:
        touched: bool | None = await self._call(
            self._touch_task, task_id, holder, alive_seconds, durable=False
        )
        return touched

    async def request_task_cancel(self, task_id: str) -> None:
        await self._call(self._db.execute, "UPDATE tasks SET cancel = 1 WHERE id = ?", (task_id,))

    def _owner_tasks(self, owner: str, limit: int, before: tuple[float, str] | None) -> list[TaskRecord]:
        created, last = before if before is not None else (float("inf"), "")
        now = time.time()
        rows = self._db.execute(
            f"""SELECT {TASK_COLUMNS}, alive_until, expires FROM tasks
                WHERE owner = ? AND expires > ? AND (created < ? OR (created = ? AND id < ?))
                ORDER BY created DESC, id DESC LIMIT ?""",
            (owner, now, created, created, last, limit),
        ).fetchall()
        return [record_from_row(row, json.loads(row[9]), row[12] > now) for row in rows]

    async def owner_tasks(self, owner: str, limit: int, before: tuple[float, str] | None) -> list[TaskRecord]:
        found: list[TaskRecord] = await self._call(self._owner_tasks, owner, limit, before, write=False)
        return found

    async def close(self) -> None:
        with self._lock:
            self._db.close()
        self._thread.shutdown(wait=False)


def _statements(script: str) -> list[str]:
    """A script's statements, to run inside a transaction (executescript would commit it)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass
class Persisted:
    """What the store holds of one process, to write only what a turn changed."""

    message_ids: list[str] = field(default_factory=list)
    descriptor_names: set[str] = field(default_factory=set)
    version: int = 0
    """The stored version this copy is (0: not stored yet)."""

    @classmethod
    def of(cls, process: LLMProcess, version: int) -> Persisted:
        """For a process just loaded from the store: everything it has is stored."""
        names = set(process.fds.names()) if process.fds is not None else set()
        return cls([m.id for m in process.messages], names, version)

    def record(
        self, process: LLMProcess, *, program: str, owner: str | None, boot: str, turns: int,
        token: int | None = None, release: bool = False,
    ) -> TurnRecord:  # fmt: skip
        """The commit that brings the store up to `process`; call `committed` once it is written."""
        history = process.history_view()
        stored = self.message_ids
        keep = len(stored)
        # messages are immutable and their ids unique: the stored prefix is intact when its last
        # message is still in place (a run appends; goto and reset cut the history short)
        if keep and (len(history) < keep or history[keep - 1].id != stored[-1]):
            keep = 0
            while keep < min(len(history), len(stored)) and history[keep].id == stored[keep]:
                keep += 1
        names = process.fds.names() if process.fds is not None else []
        new_names = [n for n in names if n not in self.descriptor_names]
        return TurnRecord(
            process.id,
            program,
            owner,
            boot,
            turns,
            header(process),
            keep,
            [message_to_json(m) for m in history[keep:]],
            descriptors_to_json(process, new_names),
            self.version,
            token,
            release,
        )

    def committed(self, record: TurnRecord, version: int) -> None:
        self.version = version
        del self.message_ids[record.keep :]
        self.message_ids.extend(m["id"] for m in record.messages)
        self.descriptor_names.update(record.descriptors)
