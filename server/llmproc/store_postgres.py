"""The process store on PostgreSQL: the state of servers that outgrow one machine.

`--state postgresql://USER:PASSWORD@HOST:PORT/DB` (or `postgres://`, or `LLMPROC_STATE`) keeps
every process in that database, with the same contract and the same shape as `SqliteStore`:
one transaction per completed turn, appending the turn's messages and rewriting one small
header row, so a commit costs the same at any length of history.

The driver is asyncpg (the `postgres` extra): it speaks the protocol natively on asyncio, so a
commit never takes a thread; it needs no libpq on the machine, keeps a connection pool, and its
binary protocol makes a turn's few statements cheap. Tables carry an `llmproc_` prefix (the
database may hold other applications' tables) and a schema version in `llmproc_meta`: a newer
llmproc can migrate it, an older one refuses it in one line. Several servers may create the
schema at once; an advisory lock makes them take turns.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from .errors import StoreError
from .store import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    Held,
    Lease,
    StoredProcess,
    TurnRecord,
    stale_lease,
    stale_version,
)
from .task_store import TASK_COLUMNS, TaskRecord, record_from_row

URL_SCHEMES = ("postgresql://", "postgres://")

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS llmproc_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS llmproc_processes (
        id TEXT PRIMARY KEY, program TEXT NOT NULL, owner TEXT, boot TEXT NOT NULL,
        turns INTEGER NOT NULL, header TEXT NOT NULL, length INTEGER NOT NULL,
        created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS llmproc_processes_by_owner ON llmproc_processes (owner)",
    """CREATE TABLE IF NOT EXISTS llmproc_messages (
        process_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (process_id, seq))""",
    """CREATE TABLE IF NOT EXISTS llmproc_descriptors (
        process_id TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (process_id, name))""",
    """CREATE TABLE IF NOT EXISTS llmproc_defaults (
        owner TEXT NOT NULL, program TEXT NOT NULL, process_id TEXT NOT NULL,
        PRIMARY KEY (owner, program))""",
]
_MIGRATIONS = {
    1: [
        "ALTER TABLE llmproc_processes ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
        """CREATE TABLE llmproc_leases (
            process_id TEXT PRIMARY KEY, holder TEXT NOT NULL, token BIGINT NOT NULL,
            expires DOUBLE PRECISION NOT NULL)""",
    ],
    2: [
        """CREATE TABLE llmproc_tasks (
            id TEXT PRIMARY KEY, owner TEXT, tool TEXT NOT NULL, era TEXT NOT NULL,
            status TEXT NOT NULL, message TEXT, created DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL, ttl_ms BIGINT NOT NULL, body TEXT NOT NULL,
            holder TEXT NOT NULL, cancel BOOLEAN NOT NULL DEFAULT FALSE,
            alive_until DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX llmproc_tasks_by_owner ON llmproc_tasks (owner, created)",
        "CREATE INDEX llmproc_tasks_by_expiry ON llmproc_tasks (expires)",
    ],
}
"""From each format to the next. Lease rows are never deleted: a token must never repeat."""
_NOW = "extract(epoch FROM clock_timestamp())::double precision"

_COMMIT_FUNCTION = """
CREATE OR REPLACE FUNCTION llmproc_commit_turn(
    p_id TEXT, p_token BIGINT, p_base INTEGER, p_keep INTEGER, p_messages TEXT[], p_names TEXT[],
    p_bodies TEXT[], p_program TEXT, p_owner TEXT, p_boot TEXT, p_turns INTEGER, p_header TEXT,
    p_now DOUBLE PRECISION, p_release BOOLEAN
) RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    held BIGINT;
    stored INTEGER;
BEGIN
    IF p_token IS NOT NULL THEN  -- the lease row stays locked to the end: no takeover half way
        SELECT token INTO held FROM llmproc_leases WHERE process_id = p_id FOR UPDATE;
        IF held IS DISTINCT FROM p_token THEN
            RAISE EXCEPTION 'stale lease' USING ERRCODE = 'LPL01';
        END IF;
    END IF;
    SELECT version INTO stored FROM llmproc_processes WHERE id = p_id FOR UPDATE;
    stored := COALESCE(stored, 0);
    IF stored <> p_base THEN
        RAISE EXCEPTION '%', stored USING ERRCODE = 'LPV01';
    END IF;
    DELETE FROM llmproc_messages WHERE process_id = p_id AND seq >= p_keep;
    INSERT INTO llmproc_messages
        SELECT p_id, p_keep + (m.ord - 1)::INTEGER, m.body
        FROM unnest(p_messages) WITH ORDINALITY AS m(body, ord);
    INSERT INTO llmproc_descriptors
        SELECT p_id, d.name, d.body FROM unnest(p_names, p_bodies) AS d(name, body)
        ON CONFLICT (process_id, name) DO UPDATE SET body = excluded.body;
    INSERT INTO llmproc_processes (id, program, owner, boot, turns, header, length, created, updated, version)
        VALUES (p_id, p_program, p_owner, p_boot, p_turns, p_header,
                p_keep + COALESCE(array_length(p_messages, 1), 0), p_now, p_now, stored + 1)
        ON CONFLICT (id) DO UPDATE SET program = excluded.program, owner = excluded.owner,
        boot = excluded.boot, turns = excluded.turns, header = excluded.header,
        length = excluded.length, updated = excluded.updated, version = excluded.version;
    IF p_release AND p_token IS NOT NULL THEN
        UPDATE llmproc_leases SET expires = 0 WHERE process_id = p_id AND token = p_token;
    END IF;
    RETURN stored + 1;
END $$
"""
"""A turn's commit in one round trip: the checks and the writes, one transaction in the server."""
_STALE_LEASE, _STALE_VERSION = "LPL01", "LPV01"
"""Lease times are the database's clock: replicas on machines whose clocks differ agree on it."""
_SCHEMA_LOCK = 0x6C6C6D70  # "llmp": the advisory lock servers take while creating the schema

_COLUMNS = "id, program, owner, boot, turns, created, updated, length, header, version"


def is_url(state: str) -> bool:
    return state.startswith(URL_SCHEMES)


def shown(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class PostgresStore:
    """A `ProcessStore` on PostgreSQL; open it with `await PostgresStore.connect(url)`."""

    def __init__(self, pool: Any, url: str) -> None:
        self._pool = pool
        self.url = url
        self._where = f"state database {shown(url)}"

    @classmethod
    async def connect(cls, url: str) -> PostgresStore:
        """Connect, create or check the schema, and return the store; a StoreError says why not."""
        try:
            import asyncpg
        except ImportError:
            raise StoreError(
                "--state with a PostgreSQL URL needs the asyncpg driver: pip install 'llmproc[postgres]'"
            ) from None
        where = f"state database {shown(url)}"
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=10, command_timeout=60, reset=_nothing_to_reset
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as err:
            raise StoreError(f"can not connect to {where}: {_reason(err)}") from None
        store = cls(pool, url)
        try:
            await store._prepare()
        except BaseException:
            await pool.close()
            raise
        return store

    async def _prepare(self) -> None:
        async with self._guard(), self._pool.acquire() as db, db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
            for statement in _SCHEMA:
                await db.execute(statement)
            await db.execute(
                """INSERT INTO llmproc_meta VALUES ('schema', $1), ('version', '1')
                   ON CONFLICT (key) DO NOTHING""",
                SCHEMA_NAME,
            )
            meta = dict(await db.fetch("SELECT key, value FROM llmproc_meta"))
            if meta.get("schema") != SCHEMA_NAME:
                raise StoreError(
                    f"{self._where} holds another application's llmproc_meta; choose another database"
                )
            version = int(meta.get("version", "0"))
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self._where} was written by a newer llmproc (format {version}, this one reads "
                    f"up to {SCHEMA_VERSION}); upgrade llmproc"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    await db.execute(statement)
            await db.execute(_COMMIT_FUNCTION)
            await db.execute("UPDATE llmproc_meta SET value = $1 WHERE key = 'version'", str(SCHEMA_VERSION))

    def _guard(self) -> _Guard:
        return _Guard(self._where)

    # -- writes --------------------------------------------------------------------------------

    async def commit(self, record: TurnRecord) -> int:
        import asyncpg

        pid = record.process_id
        async with self._guard():
            try:
                version: int = await self._pool.fetchval(
                    "SELECT llmproc_commit_turn($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    pid, record.token, record.base, record.keep, [_json(m) for m in record.messages],
                    list(record.descriptors), [_json(d) for d in record.descriptors.values()],
                    record.program, record.owner, record.boot, record.turns, _json(record.header),
                    time.time(), record.release,
                )  # fmt: skip
            except asyncpg.PostgresError as err:
                if err.sqlstate == _STALE_LEASE:
                    raise stale_lease(pid) from None
                if err.sqlstate == _STALE_VERSION:
                    raise stale_version(pid, int(getattr(err, "message", "0") or 0), record.base) from None
                raise
        return version

    async def acquire(self, process_id: str, holder: str, seconds: float) -> Lease | Held:
        async with self._guard():  # one statement: one round trip, atomic
            row = await self._pool.fetchrow(
                f"""WITH taken AS (
                        INSERT INTO llmproc_leases AS held VALUES ($1, $2, 1, {_NOW} + $3)
                        ON CONFLICT (process_id) DO UPDATE SET holder = excluded.holder,
                        token = held.token + 1, expires = excluded.expires
                        WHERE held.expires <= {_NOW} OR held.holder = excluded.holder
                        RETURNING token)
                    SELECT (SELECT token FROM taken) AS token,
                           (SELECT version FROM llmproc_processes WHERE id = $1) AS version,
                           (SELECT holder FROM llmproc_leases WHERE process_id = $1) AS holder,
                           (SELECT expires - {_NOW} FROM llmproc_leases WHERE process_id = $1) AS left""",
                process_id,
                holder,
                seconds,
            )
        if row["token"] is None:  # a live lease of someone else's (as it was when the statement began)
            return Held(row["holder"], max(0.0, row["left"] or 0.0))
        return Lease(process_id, holder, int(row["token"]), int(row["version"] or 0))

    async def renew(self, lease: Lease, seconds: float) -> bool:
        async with self._guard():
            status = await self._pool.execute(
                f"""UPDATE llmproc_leases SET expires = {_NOW} + $1
                    WHERE process_id = $2 AND token = $3 AND expires > {_NOW}""",
                seconds,
                lease.process_id,
                lease.token,
            )
        return bool(status == "UPDATE 1")

    async def release(self, lease: Lease) -> None:
        async with self._guard():
            await self._pool.execute(
                "UPDATE llmproc_leases SET expires = 0 WHERE process_id = $1 AND token = $2",
                lease.process_id,
                lease.token,
            )

    async def version(self, process_id: str) -> int:
        async with self._guard():
            found = await self._pool.fetchval(
                "SELECT version FROM llmproc_processes WHERE id = $1", process_id
            )
        return int(found or 0)

    async def set_owner(self, process_id: str, owner: str | None, boot: str) -> None:
        async with self._guard():
            await self._pool.execute(
                "UPDATE llmproc_processes SET owner = $1, boot = $2 WHERE id = $3", owner, boot, process_id
            )

    async def set_default(self, owner: str, program: str, process_id: str) -> None:
        async with self._guard():
            await self._pool.execute(
                """INSERT INTO llmproc_defaults VALUES ($1, $2, $3)
                   ON CONFLICT (owner, program) DO UPDATE SET process_id = excluded.process_id""",
                owner,
                program,
                process_id,
            )

    # -- reads ---------------------------------------------------------------------------------

    async def load(self, process_id: str, after: tuple[int, str] | None = None) -> StoredProcess | None:
        known, last_id = after if after is not None else (0, None)
        async with self._guard():  # one statement: one round trip, one consistent moment
            row = await self._pool.fetchrow(
                f"""WITH p AS (
                        SELECT {_COLUMNS}, CASE WHEN $2 > 0 AND length >= $2 AND (
                            SELECT body::json->>'id' FROM llmproc_messages
                            WHERE process_id = $1 AND seq = $2 - 1) = $3 THEN $2 ELSE 0 END AS tail_from
                        FROM llmproc_processes WHERE id = $1)
                    SELECT p.*,
                        ARRAY(SELECT body FROM llmproc_messages m WHERE m.process_id = $1
                              AND m.seq >= p.tail_from AND m.seq < p.length ORDER BY m.seq) AS bodies,
                        ARRAY(SELECT name FROM llmproc_descriptors WHERE process_id = $1
                              ORDER BY name) AS names,
                        ARRAY(SELECT body FROM llmproc_descriptors WHERE process_id = $1
                              ORDER BY name) AS fds
                    FROM p""",
                process_id,
                known,
                last_id,
            )
        if row is None:
            return None
        stored = _summary(row)
        stored.tail_from = row["tail_from"]
        messages = [json.loads(body) for body in row["bodies"]]
        descriptors = {name: json.loads(body) for name, body in zip(row["names"], row["fds"], strict=True)}
        stored.document = {**stored.header, "messages": messages, "file_descriptors": descriptors}
        return stored

    async def default(self, owner: str, program: str) -> str | None:
        async with self._guard():
            found: str | None = await self._pool.fetchval(
                "SELECT process_id FROM llmproc_defaults WHERE owner = $1 AND program = $2", owner, program
            )
        return found

    async def owned(self, owner: str) -> list[StoredProcess]:
        async with self._guard():
            rows = await self._pool.fetch(f"SELECT {_COLUMNS} FROM llmproc_processes WHERE owner = $1", owner)
        return [_summary(row) for row in rows]

    # -- tasks ---------------------------------------------------------------------------------

    async def save_task(self, record: TaskRecord, alive_seconds: float) -> None:
        async with self._guard():  # one statement: the expired go in the same round trip
            await self._pool.execute(
                f"""WITH gone AS (DELETE FROM llmproc_tasks WHERE expires <= {_NOW})
                    INSERT INTO llmproc_tasks VALUES
                        ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, {_NOW} + $13, $14)
                    ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, tool = excluded.tool,
                    era = excluded.era, status = excluded.status, message = excluded.message,
                    updated = excluded.updated, ttl_ms = excluded.ttl_ms, body = excluded.body,
                    holder = excluded.holder, cancel = excluded.cancel,
                    alive_until = excluded.alive_until, expires = excluded.expires""",
                record.task_id, record.owner, record.tool, record.era, record.status, record.message,
                record.created, record.updated, record.ttl_ms, _json(record.body()), record.holder,
                record.cancel_requested, alive_seconds, record.expires,
            )  # fmt: skip

    async def load_task(self, task_id: str) -> TaskRecord | None:
        async with self._guard():
            row = await self._pool.fetchrow(
                f"""SELECT {TASK_COLUMNS}, alive_until > {_NOW} AS alive FROM llmproc_tasks
                    WHERE id = $1 AND expires > {_NOW}""",
                task_id,
            )
        return None if row is None else record_from_row(row, json.loads(row["body"]), row["alive"])

    async def touch_task(self, task_id: str, holder: str, alive_seconds: float) -> bool | None:
        async with self._guard():
            row = await self._pool.fetchrow(
                f"""UPDATE llmproc_tasks SET alive_until = {_NOW} + $3 WHERE id = $1 AND holder = $2
                    AND status IN ('working', 'input_required') RETURNING cancel""",
                task_id,
                holder,
                alive_seconds,
            )
        return None if row is None else bool(row["cancel"])

    async def request_task_cancel(self, task_id: str) -> None:
        async with self._guard():
            await self._pool.execute("UPDATE llmproc_tasks SET cancel = TRUE WHERE id = $1", task_id)

    async def owner_tasks(self, owner: str, limit: int, before: tuple[float, str] | None) -> list[TaskRecord]:
        created, last = before if before is not None else (float("inf"), "")
        async with self._guard():
            rows = await self._pool.fetch(
                f"""SELECT {TASK_COLUMNS}, alive_until > {_NOW} AS alive FROM llmproc_tasks
                    WHERE owner = $1 AND expires > {_NOW} AND (created < $2 OR (created = $2 AND id < $3))
                    ORDER BY created DESC, id DESC LIMIT $4""",
                owner,
                created,
                last,
                limit,
            )
        return [record_from_row(row, json.loads(row["body"]), row["alive"]) for row in rows]

    async def close(self) -> None:
        await self._pool.close()


class _Guard:
    """The driver's failures as StoreErrors that name the database (never its password)."""

    def __init__(self, where: str) -> None:
        self._where = where

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: Any, error: BaseException | None, trace: Any) -> bool:
        if error is None or isinstance(error, StoreError) or not isinstance(error, Exception):
            return False
        import asyncpg

        if isinstance(error, OSError | asyncpg.PostgresError | asyncpg.InterfaceError):
            raise StoreError(f"{self._where} failed: {_reason(error)}") from None
        return False


async def _nothing_to_reset(connection: Any) -> None:
    """A connection goes back to the pool as it is (an open transaction is still rolled back):
    the store sets no session state (no SET, LISTEN or session advisory lock), and asyncpg's
    default reset would cost a round trip on every statement outside a transaction."""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # control characters (NUL too) stay escaped


def _summary(row: Any) -> StoredProcess:
    return StoredProcess(
        row["id"], row["program"], row["owner"], row["boot"], row["turns"],
        row["created"], row["updated"], row["length"], json.loads(row["header"]), row["version"],
    )  # fmt: skip


def _reason(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    if isinstance(err, ConnectionRefusedError) or "Connect call failed" in text:
        return f"connection refused (is PostgreSQL running?): {text}"
    return text
