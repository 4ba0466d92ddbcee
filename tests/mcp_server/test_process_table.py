"""The server's process table: ownership, each caller's default, the per-caller cap, eviction."""

from __future__ import annotations

import time

import pytest

from llmproc import LLMProgram, ToolError
from llmproc.mcp_server.handles import ProcessTable

PROGRAM = LLMProgram(model_name="s", provider="scripted")


def test_processes_belong_to_their_caller():
    table = ProcessTable()
    mine = table.default("alice", "echo", PROGRAM)
    assert table.default("alice", "echo", PROGRAM) is mine
    assert table.get(mine.id, "alice") is mine
    with pytest.raises(ToolError, match=f"unknown process '{mine.id}'"):
        table.get(mine.id, "bob")
    with pytest.raises(ToolError, match=f"unknown process '{mine.id}'"):
        table.get(mine.id, None)  # a caller without identity can not use an owned process
    assert table.default("bob", "echo", PROGRAM) is not mine


def test_callers_without_identity_get_a_new_process_each_time_and_reach_it_by_id():
    table = ProcessTable()
    first, second = table.default(None, "echo", PROGRAM), table.default(None, "echo", PROGRAM)
    assert first is not second
    assert table.get(first.id, None) is first
    assert table.owned_by(None) == []  # nothing to list for an anonymous caller


def test_the_per_caller_cap_is_a_clear_error():
    table = ProcessTable(max_per_caller=2)
    table.create("echo", PROGRAM, "alice")
    table.create("echo", PROGRAM, "alice")
    with pytest.raises(ToolError, match="you have 2 live processes, the most one client may keep"):
        table.create("echo", PROGRAM, "alice")
    table.create("echo", PROGRAM, "bob")  # others are not affected


def test_idle_processes_are_evicted():
    table = ProcessTable(idle_seconds=60)
    old = table.default("alice", "echo", PROGRAM)
    fresh = table.default("alice", "other", PROGRAM)
    old.last_used = time.time() - 120
    assert table.evict_idle() == [old]
    assert len(table) == 1 and table.get(fresh.id, "alice") is fresh
    assert table.default("alice", "echo", PROGRAM) is not old  # a new default replaces it


def test_the_server_keeps_the_table_it_is_given_even_while_empty(tmp_path):
    """An empty table is falsy: `table or ProcessTable()` once dropped --idle-timeout and --max-processes."""
    from llmproc.mcp_server.app import LLMProcServer
    from llmproc.mcp_server.catalog import Catalog

    table = ProcessTable(max_per_caller=3, idle_seconds=5)
    assert LLMProcServer(Catalog.load(tmp_path), table=table).table is table
