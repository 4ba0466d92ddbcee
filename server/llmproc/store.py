"""Where a server keeps its processes between turns and across restarts.

`ProcessStore` is the whole contract: a few async calls on plain JSON-able data, so a shared
database (PostgreSQL, Redis) can implement it for replicas behind a load balancer.
`SqliteStore` is the embedded implementation (standard library `sqlite3`, WAL mode). Each
completed turn is one transaction that appends the turn's messages and rewrites only the
small header row: the cost of persisting a turn does not grow with the history.
`Persisted` works out what a process added since its last commit.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import StoreError
from .snapshot import descriptors_to_json, header, message_to_json

if TYPE_CHECKING:
    from .process import LLMProcess

SCHEMA_NAME = "llmproc-state"
SCHEMA_VERSION = 1


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
    document: dict[str, Any] | None = None
    """The snapshot document (header, messages, descriptors), when loaded whole."""

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


def iso_utc(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


class ProcessStore(Protocol):
    async def commit(self, record: TurnRecord) -> None:
        """Write one turn atomically: all of it or none of it."""

    async def load(self, process_id: str) -> StoredProcess | None:
        """The process with its snapshot document, or None."""

    async def set_owner(self, process_id: str, owner: str | None, boot: str) -> None: ...

    async def set_default(self, owner: str, program: str, process_id: str) -> None:
        """Remember the caller's default process for a program."""

    async def default(self, owner: str, program: str) -> str | None: ...

    async def owned(self, owner: str) -> list[StoredProcess]:
        """Summaries (no documents) of the processes `owner` holds."""

    async def close(self) -> None: ...


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


class SqliteStore:
    """The embedded store: one file, WAL mode, one transaction per completed turn.

    sqlite3 is synchronous, so calls run in a thread of the store's own (one at a time) and
    the event loop keeps serving while a commit waits for the disk; tools or DNS look-ups
    that tie up other threads can not hold a commit back.

    One store at a time uses a file: until per-process leases make sharing safe, a second
    server on the same file would splice the two servers' turns into one history, so it is
    refused, naming the holder (`StateHolder`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._holder = StateHolder.claim(self.path)
        try:
            self._db = self._open()
        except BaseException:
            self._holder.release()
            raise
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="llmproc-store")

    def _open(self) -> sqlite3.Connection:
        where = f"state database {self.path}"
        if self.path.is_dir():
            raise StoreError(f"{where} is a directory; give a file path to --state")
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(f"can not open {where}: {err}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed turn survives a power cut too
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "llmproc_meta" not in tables:
                raise StoreError(
                    f"{where} belongs to another application (tables: {', '.join(sorted(tables))}); "
                    "choose another --state path"
                )
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT key, value FROM llmproc_meta").fetchall())
            if not meta:
                db.executemany(
                    "INSERT INTO llmproc_meta VALUES (?, ?)",
                    [("schema", SCHEMA_NAME), ("version", str(SCHEMA_VERSION))],
                )
            elif meta.get("schema") != SCHEMA_NAME:
                raise StoreError(f"{where} is not an llmproc state database; choose another --state path")
            elif int(meta.get("version", "0")) > SCHEMA_VERSION:
                raise StoreError(
                    f"{where} was written by a newer llmproc (format {meta['version']}, this one reads "
                    f"up to {SCHEMA_VERSION}); upgrade llmproc"
                )
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

    async def _call(self, function: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return function(*args)

        return await asyncio.get_running_loop().run_in_executor(self._thread, locked)

    # -- writes --------------------------------------------------------------------------------

    def _commit(self, record: TurnRecord) -> None:
        db, now = self._db, time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "DELETE FROM messages WHERE process_id = ? AND seq >= ?", (record.process_id, record.keep)
            )
            db.executemany(
                "INSERT INTO messages VALUES (?, ?, ?)",
                [
                    (record.process_id, record.keep + i, json.dumps(m, ensure_ascii=False))
                    for i, m in enumerate(record.messages)
                ],
            )
            db.executemany(
                "INSERT OR REPLACE INTO descriptors VALUES (?, ?, ?)",
                [
                    (record.process_id, n, json.dumps(d, ensure_ascii=False))
                    for n, d in record.descriptors.items()
                ],
            )
            db.execute(
                """INSERT INTO processes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET program = excluded.program, owner = excluded.owner,
                   boot = excluded.boot, turns = excluded.turns, header = excluded.header,
                   length = excluded.length, updated = excluded.updated""",
                (
                    record.process_id,
                    record.program,
                    record.owner,
                    record.boot,
                    record.turns,
                    json.dumps(record.header, ensure_ascii=False),
                    record.keep + len(record.messages),
                    now,
                    now,
                ),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def commit(self, record: TurnRecord) -> None:
        await self._call(self._commit, record)

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

    _COLUMNS = "id, program, owner, boot, turns, created, updated, length, header"

    @staticmethod
    def _summary(row: tuple[Any, ...]) -> StoredProcess:
        process_id, program, owner, boot, turns, created, updated, length, head = row
        return StoredProcess(
            process_id, program, owner, boot, turns, created, updated, length, json.loads(head)
        )

    def _load(self, process_id: str) -> StoredProcess | None:
        row = self._db.execute(
            f"SELECT {self._COLUMNS} FROM processes WHERE id = ?", (process_id,)
        ).fetchone()
        if row is None:
            return None
        stored = self._summary(row)
        length = stored.length
        messages = [
            json.loads(body)
            for (body,) in self._db.execute(
                "SELECT body FROM messages WHERE process_id = ? AND seq < ? ORDER BY seq",
                (process_id, length),
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

    async def load(self, process_id: str) -> StoredProcess | None:
        return await self._call(self._load, process_id)

    def _default(self, owner: str, program: str) -> str | None:
        row = self._db.execute(
            "SELECT process_id FROM defaults WHERE owner = ? AND program = ?", (owner, program)
        ).fetchone()
        return row[0] if row else None

    async def default(self, owner: str, program: str) -> str | None:
        return await self._call(self._default, owner, program)

    def _owned(self, owner: str) -> list[StoredProcess]:
        rows = self._db.execute(f"SELECT {self._COLUMNS} FROM processes WHERE owner = ?", (owner,))
        return [self._summary(row) for row in rows]

    async def owned(self, owner: str) -> list[StoredProcess]:
        return await self._call(self._owned, owner)

    async def close(self) -> None:
        with self._lock:
            self._db.close()
        self._thread.shutdown(wait=False)
        self._holder.release()


class StateHolder:
    """An exclusive lock on `<state file>.lock`, which also says who holds it.

    The kernel drops the lock when the holder's process ends, however it ends (kill -9
    included), so a crashed server never leaves a stale claim behind.
    """

    def __init__(self, file: Any) -> None:
        self._file = file

    @classmethod
    def claim(cls, path: Path) -> StateHolder:
        lock_path = path.with_name(path.name + ".lock")
        if path.is_dir():
            return cls(None)  # _open says what is wrong
        try:
            file = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        except OSError as err:
            raise StoreError(f"can not claim state database {path}: {lock_path}: {err.strerror}") from None
        try:
            import fcntl  # POSIX; where it is missing (Windows) the file is not claimed
        except ImportError:
            return cls(file)
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise StoreError(
                f"state database {path} is in use by {holder}; stop that server or choose "
                "another --state path"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"llmproc pid {os.getpid()} on {socket.gethostname()} since {iso_utc(time.time())}\n")
        file.flush()
        return cls(file)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the lock
            self._file = None


@dataclass
class Persisted:
    """What the store holds of one process, to write only what a turn changed."""

    message_ids: list[str] = field(default_factory=list)
    descriptor_names: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, process: LLMProcess) -> Persisted:
        """For a process just loaded from the store: everything it has is stored."""
        names = set(process.fds.names()) if process.fds is not None else set()
        return cls([m.id for m in process.messages], names)

    def record(
        self, process: LLMProcess, *, program: str, owner: str | None, boot: str, turns: int
    ) -> TurnRecord:
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
        )

    def committed(self, record: TurnRecord) -> None:
        del self.message_ids[record.keep :]
        self.message_ids.extend(m["id"] for m in record.messages)
        self.descriptor_names.update(record.descriptors)
