"""The process store contract, one suite for both stores: SQLite and PostgreSQL (a real cluster)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from mcp import Client

from helpers import COUNTER, llmproc_mcp, write_programs
from llmproc.errors import LeaseLost, StoreError
from llmproc.store import SCHEMA_VERSION, Held, Lease, TurnRecord
from mcp_results import text


def message(n: int, text: str | None = None) -> dict[str, Any]:
    role = "user" if n % 2 == 0 else "assistant"
    return {"id": f"msg-{n}", "role": role, "content": [{"type": "text", "text": text or f"message {n}"}]}


def record(
    keep: int, messages: list[dict[str, Any]], *, process_id: str = "p1", owner: str | None = "alice",
    turns: int = 1, descriptors: dict[str, dict[str, str]] | None = None, base: int | None = None,
    token: int | None = None,
) -> TurnRecord:  # fmt: skip
    """A turn's commit; by default the process's `turns`-th, made on the version before it."""
    header = {"format": "llmproc-snapshot", "version": 1, "process_id": process_id, "cost_usd": 0.5}
    return TurnRecord(
        process_id, "counter", owner, "boot-1", turns, header, keep, messages, descriptors or {},
        turns - 1 if base is None else base, token,
    )  # fmt: skip


async def test_a_committed_turn_loads_back_whole(stores):
    store = await stores.open()
    fds = {"fd:1": {"text": "paged", "source": "a tool"}}
    await store.commit(record(0, [message(0), message(1)], descriptors=fds))
    loaded = await store.load("p1")
    assert (loaded.program, loaded.owner, loaded.boot, loaded.turns, loaded.length) == (
        "counter", "alice", "boot-1", 1, 2,
    )  # fmt: skip
    assert loaded.document["messages"] == [message(0), message(1)]
    assert loaded.document["file_descriptors"] == fds
    assert loaded.document["cost_usd"] == 0.5
    assert await store.load("nobody") is None


async def test_later_turns_append_and_a_rewind_replaces_the_tail(stores):
    store = await stores.open()
    await store.commit(record(0, [message(0), message(1)]))
    await store.commit(record(2, [message(2), message(3)], turns=2))
    await store.commit(record(2, [message(4, "instead")], turns=3))  # goto back to after message 1
    loaded = await store.load("p1")
    assert [m["id"] for m in loaded.document["messages"]] == ["msg-0", "msg-1", "msg-4"]
    assert (loaded.length, loaded.turns) == (3, 3)


async def test_everything_survives_a_restart(stores):
    store = await stores.open()
    await store.commit(record(0, [message(0), message(1)]))
    await store.set_default("alice", "counter", "p1")
    store = await stores.restart(store)
    assert (await store.load("p1")).document["messages"] == [message(0), message(1)]
    assert await store.default("alice", "counter") == "p1"


async def test_defaults_and_owners(stores):
    store = await stores.open()
    await store.commit(record(0, [message(0)], process_id="a"))
    await store.commit(record(0, [message(0)], process_id="b", owner="bob"))
    await store.set_default("alice", "counter", "a")
    await store.set_default("alice", "counter", "b")  # replaced, not added
    assert await store.default("alice", "counter") == "b"
    assert await store.default("alice", "other") is None
    assert [p.process_id for p in await store.owned("alice")] == ["a"]
    await store.set_owner("a", None, "boot-2")
    loaded = await store.load("a")
    assert (loaded.owner, loaded.boot) == (None, "boot-2")
    assert await store.owned("alice") == []
    assert all(p.document is None for p in await store.owned("bob"))  # summaries only


async def test_any_unicode_text_round_trips(stores):
    store = await stores.open()
    odd = "NUL \x00 tab \t emoji 🧪 RTL \u202e עברית zero-width \u200b combining e\u0301"
    await store.commit(record(0, [message(0, odd)], descriptors={"ref:x": {"text": odd, "source": odd}}))
    loaded = await store.load("p1")
    assert loaded.document["messages"][0]["content"][0]["text"] == odd
    assert loaded.document["file_descriptors"]["ref:x"]["text"] == odd


async def test_a_commit_that_can_not_be_written_changes_nothing(stores):
    store = await stores.open()
    await store.commit(record(0, [message(0), message(1)]))
    with pytest.raises((TypeError, ValueError)):
        await store.commit(record(2, [message(2), {"not json": {1, 2}}], turns=2))
    loaded = await store.load("p1")
    assert (loaded.length, loaded.turns) == (2, 1)


async def test_a_long_history_keeps_its_order(stores):
    store = await stores.open()
    history = [message(n) for n in range(1500)]
    await store.commit(record(0, history))
    await store.commit(record(1500, [message(1500)], turns=2))
    loaded = await store.load("p1")
    assert [m["id"] for m in loaded.document["messages"]] == [f"msg-{n}" for n in range(1501)]


async def test_a_copy_that_is_behind_reads_only_what_it_lacks(stores):
    store = await stores.open()
    fds = {"fd:1": {"text": "paged", "source": "a tool"}}
    await store.commit(record(0, [message(0), message(1)]))
    await store.commit(record(2, [message(2), message(3)], turns=2, descriptors=fds))
    behind = await store.load("p1", after=(2, "msg-1"))
    assert behind.tail_from == 2 and behind.document["messages"] == [message(2), message(3)]
    assert behind.document["file_descriptors"] == fds and behind.length == 4
    current = await store.load("p1", after=(4, "msg-3"))
    assert current.tail_from == 4 and current.document["messages"] == []
    await store.commit(record(1, [message(5, "after a goto")], turns=3))  # the tail rewritten
    rewound = await store.load("p1", after=(2, "msg-1"))
    assert rewound.tail_from == 0
    assert [m["id"] for m in rewound.document["messages"]] == ["msg-0", "msg-5"]
    assert (await store.load("p1", after=(9, "msg-8"))).tail_from == 0  # longer than the history


# -- leases: one server at a time per process -------------------------------------------------------


async def test_a_lease_is_one_servers_until_it_is_given_back(stores):
    one, two = await stores.open(), await stores.open()  # two servers on one database
    first = await one.acquire("p1", "server one", 60)
    assert first == Lease("p1", "server one", 1, 0)
    held = await two.acquire("p1", "server two", 60)
    assert isinstance(held, Held) and held.holder == "server one"
    assert 0 < held.seconds_left <= 60
    assert isinstance(await two.acquire("p2", "server two", 60), Lease)  # other processes are free
    await one.release(first)
    second = await two.acquire("p1", "server two", 60)
    assert second == Lease("p1", "server two", 2, 0)  # a new token: tokens never repeat


async def test_an_expired_lease_is_taken_over_and_its_holder_can_not_commit(stores):
    one, two = await stores.open(), await stores.open()
    await one.commit(record(0, [message(0), message(1)]))
    lapsed = await one.acquire("p1", "server one", 0)  # expires at once: a paused holder
    taken = await two.acquire("p1", "server two", 60)
    assert isinstance(taken, Lease) and taken.token == lapsed.token + 1 and taken.version == 1
    assert await one.renew(lapsed, 60) is False  # it learns that it lost the lease
    with pytest.raises(LeaseLost, match="taken over by another server"):
        await one.commit(record(2, [message(2, "stale")], turns=2, token=lapsed.token))
    assert await two.commit(record(2, [message(2, "fresh")], turns=2, token=taken.token)) == 2
    with pytest.raises(LeaseLost):  # still refused after the newer turn
        await one.commit(record(2, [message(2, "stale")], turns=2, base=2, token=lapsed.token))
    loaded = await (await stores.open()).load("p1")
    assert [m["content"][0]["text"] for m in loaded.document["messages"]][2:] == ["fresh"]
    assert (loaded.version, loaded.turns) == (2, 2)


async def test_a_commit_built_on_an_older_version_is_refused(stores):
    store = await stores.open()
    assert await store.commit(record(0, [message(0)])) == 1
    assert await store.commit(record(1, [message(1)], turns=2)) == 2
    with pytest.raises(LeaseLost, match=r"changed in the state database.*\(version 2, not 1\)"):
        await store.commit(record(1, [message(1, "from an old copy")], turns=2, base=1))
    with pytest.raises(LeaseLost, match=r"\(version 0, not 1\)"):  # a process that is not stored
        await store.commit(record(0, [message(0)], process_id="new", turns=2))
    assert await store.version("p1") == 2
    assert await store.version("new") == 0
    assert (await store.load("p1")).document["messages"] == [message(0), message(1)]


async def test_a_live_lease_renews_and_the_last_commit_gives_it_back(stores):
    store, other = await stores.open(), await stores.open()
    await store.commit(record(0, [message(0)]))
    lease = await store.acquire("p1", "server one", 60)
    assert lease.version == 1
    assert await store.renew(lease, 60) is True
    assert isinstance(await other.acquire("p1", "server two", 60), Held)
    last = record(1, [message(1)], turns=2, token=lease.token)
    last.release = True
    assert await store.commit(last) == 2
    assert await store.renew(lease, 60) is False  # given back: a late renewal does not take it again
    assert (await other.acquire("p1", "server two", 60)).token == lease.token + 1
    expired = await store.acquire("p2", "server one", 0)
    assert await store.renew(expired, 60) is False  # expired: another server may hold it by now


# -- PostgreSQL only ---------------------------------------------------------------------------------


async def test_a_postgresql_database_of_format_1_is_migrated(postgres_url):
    import asyncpg

    from llmproc.store_postgres import _SCHEMA, PostgresStore

    db = await asyncpg.connect(postgres_url)  # the tables as format 1 made them, with a turn
    for statement in _SCHEMA:
        await db.execute(statement)
    await db.execute("INSERT INTO llmproc_meta VALUES ('schema', 'llmproc-state'), ('version', '1')")
    await db.execute("INSERT INTO llmproc_processes VALUES ('p1', 'counter', 'alice', 'b', 1, '{}', 1, 0, 0)")
    await db.execute("""INSERT INTO llmproc_messages VALUES ('p1', 0, '{"id": "m"}')""")
    await db.close()
    store = await PostgresStore.connect(postgres_url)
    try:
        assert (await store.load("p1")).version == 1
        lease = await store.acquire("p1", "me", 60)
        assert await store.commit(record(1, [message(1)], turns=2, token=lease.token)) == 2
    finally:
        await store.close()


async def test_a_database_written_by_a_newer_llmproc_is_refused(postgres_url):
    import asyncpg

    from llmproc.store_postgres import PostgresStore

    await (await PostgresStore.connect(postgres_url)).close()
    db = await asyncpg.connect(postgres_url)
    await db.execute("UPDATE llmproc_meta SET value = '99' WHERE key = 'version'")
    await db.close()
    with pytest.raises(StoreError, match=r"written by a newer llmproc \(format 99.*upgrade llmproc"):
        await PostgresStore.connect(postgres_url)


async def test_a_database_whose_llmproc_meta_is_another_applications_is_refused(postgres_url):
    import asyncpg

    from llmproc.store_postgres import PostgresStore

    db = await asyncpg.connect(postgres_url)
    await db.execute("CREATE TABLE llmproc_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    await db.execute("INSERT INTO llmproc_meta VALUES ('schema', 'someone-else')")
    await db.close()
    with pytest.raises(StoreError, match="holds another application's llmproc_meta; choose another database"):
        await PostgresStore.connect(postgres_url)


async def test_an_unreachable_server_is_one_clear_error_without_the_password(postgres_url):
    from llmproc.store_postgres import PostgresStore

    port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
    url = f"postgresql://llmproc:hunter2@127.0.0.1:{port + 1 if port < 65535 else port - 1}/llmproc"
    with pytest.raises(StoreError) as refused:
        await PostgresStore.connect(url)
    message = str(refused.value)
    assert "can not connect to state database postgresql://llmproc:***@127.0.0.1" in message
    assert "hunter2" not in message


async def test_a_wrong_password_is_named(postgres_url):
    from llmproc.store_postgres import PostgresStore

    wrong = postgres_url.replace(":secret@", ":wrong@")
    with pytest.raises(StoreError, match="password authentication failed"):
        await PostgresStore.connect(wrong)


async def test_llmproc_mcp_keeps_conversations_in_postgresql_across_restarts(postgres_url, tmp_path):
    programs = write_programs(tmp_path / "programs", {"counter.toml": COUNTER})
    async with Client(llmproc_mcp(programs, "--state", postgres_url)) as client:
        first = await client.call_tool("run_counter", {"message": "a"})
        pid = first.structured_content["process_id"]
        assert text(first) == "one"
    params = llmproc_mcp(programs)  # the variable instead of --state
    params.env = {**(params.env or {}), "LLMPROC_STATE": postgres_url}
    async with Client(params) as client:
        again = await client.call_tool("run_counter", {"message": "b", "process_id": pid})
        assert (text(again), again.structured_content["process_id"]) == ("two", pid)
        listed = (await client.call_tool("list_processes", {})).structured_content["processes"]
        assert [(p["process_id"], p["turns"]) for p in listed] == [(pid, 2)]


async def test_llmproc_mcp_says_why_it_can_not_reach_postgresql(tmp_path):
    programs = write_programs(tmp_path / "programs", {"counter.toml": COUNTER})
    url = "postgresql://someone:pw@127.0.0.1:1/llmproc"
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--state", url,
         "--transport", "streamable-http", "--port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "can not connect to state database postgresql://someone:***@127.0.0.1:1/llmproc" in done.stderr
    assert ":pw@" not in done.stderr


# -- SQLite only -------------------------------------------------------------------------------------


async def test_an_sqlite_file_of_format_1_is_migrated(tmp_path):
    import sqlite3

    from llmproc.store import _SCHEMA, SqliteStore

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)
    db.execute("INSERT INTO llmproc_meta VALUES ('schema', 'llmproc-state'), ('version', '1')")
    db.execute("INSERT INTO processes VALUES ('p1', 'counter', 'alice', 'b', 1, '{}', 1, 0, 0)")
    db.execute("""INSERT INTO messages VALUES ('p1', 0, '{"id": "m"}')""")
    db.commit()
    db.close()
    store = SqliteStore(path)
    try:
        assert (await store.load("p1")).version == 1
        lease = await store.acquire("p1", "me", 60)
        assert await store.commit(record(1, [message(1)], turns=2, token=lease.token)) == 2
    finally:
        await store.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT value FROM llmproc_meta WHERE key = 'version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    check.close()
