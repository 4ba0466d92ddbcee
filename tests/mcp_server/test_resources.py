"""What a host can read of its processes: the list, each transcript and its messages, the
published programs; bound to their owner; and subscriptions that fire once per completed turn.
Both protocol eras, over stdio and Streamable HTTP, with the `mcp` SDK client and raw JSON-RPC."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from fake_provider import Turn
from helpers import CLAUDE, COUNTER, SCRIPTED, call, llmproc_mcp, wait_until, write_programs
from http_servers import TOOLBOX, serve_llmproc
from raw_mcp import RawError, RawHttp, RawStdio


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    tooling = SCRIPTED + textwrap.dedent(
        f"""
        [scripted]
        replies = [{{tool_calls = [{{name = "toolbox__echo", arguments = {{text = "ping ```"}}}}]}}, "done"]
        [mcp.servers.toolbox]
        command = {json.dumps(sys.executable)}
        args = [{json.dumps(str(TOOLBOX))}]
        """
    )
    return write_programs(tmp_path / "programs", {"counter.toml": COUNTER, "tooling.toml": tooling})


def contents(read: Any) -> list[tuple[str | None, str]]:
    return [(c.mime_type, c.text) for c in read.contents]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_host_lists_and_reads_its_conversations(programs: Path, mode: str):
    async with Client(llmproc_mcp(programs, "--no-state"), mode=mode) as client:
        if mode == "legacy":  # (a 2026-07-28 client learns them from discover, when it asks)
            resources = client.server_capabilities.resources
            assert resources is not None and resources.subscribe and resources.list_changed
        result = await client.call_tool("run_tooling", {"message": "# use the tool"})
        pid = result.structured_content["process_id"]
        (link,) = [c for c in result.content if c.type == "resource_link"]
        assert str(link.uri) == f"llmproc://processes/{pid}" and link.mime_type == "text/markdown"
        await client.call_tool("run_counter", {"message": "hi"})

        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert "llmproc://processes" in listed and f"llmproc://processes/{pid}" in listed
        assert {"llmproc://programs/counter", "llmproc://programs/tooling"} <= set(listed)
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {
            "llmproc://processes/{process_id}",
            "llmproc://processes/{process_id}/messages.json",
            "llmproc://processes/{process_id}/tree",
            "llmproc://programs/{name}",
        }

        ((mime, markdown),) = contents(await client.read_resource(f"llmproc://processes/{pid}"))
        assert mime == "text/markdown"
        assert markdown.startswith(f"# tooling: conversation {pid}\n")
        assert "## User" in markdown and "## Assistant" in markdown and "## Tool results" in markdown
        assert "**Tool call** `toolbox__echo`" in markdown and '"text": "ping ```"' in markdown
        assert "````" in markdown  # a fence longer than the backticks inside it
        assert "```text\n# use the tool\n```" in markdown  # user text can not start a heading
        assert markdown.rstrip().endswith("done")

        ((mime, raw),) = contents(await client.read_resource(f"llmproc://processes/{pid}/messages.json"))
        messages = json.loads(raw)
        assert mime == "application/json"
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
        assert messages[1]["content"][0]["type"] == "tool_call"

        ((mime, listing),) = contents(await client.read_resource("llmproc://processes"))
        processes = {p["process_id"]: p for p in json.loads(listing)["processes"]}
        assert processes[pid]["program"] == "tooling" and processes[pid]["turns"] == 1

        (toml, about) = contents(await client.read_resource("llmproc://programs/counter"))
        assert toml == ("application/toml", COUNTER)
        assert json.loads(about[1])["tool"] == "run_counter"

        for uri in ("llmproc://processes/nope", "llmproc://programs/nope", "file:///etc/passwd",
                    f"llmproc://processes/{pid}/../../x", "llmproc://processes/%2e%2e"):  # fmt: skip
            with pytest.raises(MCPError) as err:
                await client.read_resource(uri)
            assert err.value.error.code == -32602 and "Resource not found" in err.value.error.message


@pytest.fixture
def http_url(programs: Path) -> Iterator[str]:
    yield from serve_llmproc(programs, "streamable-http", "--no-state")


async def test_another_clients_transcript_is_not_found(http_url: str):
    async with RawHttp(http_url) as alice, RawHttp(http_url) as bob:
        pid = (
            await alice.request("tools/call", {"name": "run_counter", "arguments": {"message": "secret"}})
        )["structuredContent"]["process_id"]
        read = await alice.request("resources/read", {"uri": f"llmproc://processes/{pid}"})
        assert "secret" in read["contents"][0]["text"]
        for uri in (f"llmproc://processes/{pid}", f"llmproc://processes/{pid}/messages.json"):
            with pytest.raises(RawError) as err:
                await bob.request("resources/read", {"uri": uri})
            assert "Resource not found" in err.value.message and "secret" not in err.value.message
        with pytest.raises(RawError):
            await bob.request("resources/subscribe", {"uri": f"llmproc://processes/{pid}"})
        listed = [r["uri"] for r in (await bob.request("resources/list"))["resources"]]
        assert f"llmproc://processes/{pid}" not in listed
        bobs = json.loads(
            (await bob.request("resources/read", {"uri": "llmproc://processes"}))["contents"][0]["text"]
        )
        assert bobs == {"processes": []}


def raw_stdio(programs: Path) -> RawStdio:
    return RawStdio(sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--no-state")


async def test_a_subscription_fires_once_per_completed_turn(programs: Path):
    async with raw_stdio(programs) as client:
        capabilities = client.initialized["capabilities"]
        assert capabilities["resources"] == {"subscribe": True, "listChanged": True}
        first = await client.request("tools/call", {"name": "run_counter", "arguments": {"message": "a"}})
        uri = f"llmproc://processes/{first['structuredContent']['process_id']}"
        await client.request("resources/subscribe", {"uri": uri})

        def updates() -> int:
            return sum(
                1
                for n in client.notifications
                if n["method"] == "notifications/resources/updated" and n["params"]["uri"] == uri
            )

        await client.request("tools/call", {"name": "run_counter", "arguments": {"message": "b"}})
        await client.request("tools/call", {"name": "run_counter", "arguments": {"message": "c"}})
        assert updates() == 2
        other = await client.request("tools/call", {"name": "run_tooling", "arguments": {"message": "x"}})
        assert other["structuredContent"]["program"] == "tooling"
        assert updates() == 2  # another process's turn is not this one's
        assert any(n["method"] == "notifications/resources/list_changed" for n in client.notifications)
        await client.request("resources/unsubscribe", {"uri": uri})
        await client.request("tools/call", {"name": "run_counter", "arguments": {"message": "d"}})
        assert updates() == 2


async def test_a_2026_listener_hears_each_completed_turn(http_url: str):
    async with Client(streamable_http_client(http_url), mode="2026-07-28") as client:
        first = await client.call_tool("run_counter", {"message": "a"})
        pid = first.structured_content["process_id"]
        uri = f"llmproc://processes/{pid}"
        heard: list[str] = []
        async with client.listen(resource_subscriptions=[uri], resources_list_changed=True) as events:

            async def collect() -> None:
                async for event in events:
                    heard.append(getattr(event, "uri", type(event).__name__))

            async with anyio.create_task_group() as group:
                group.start_soon(collect)
                await client.call_tool("run_counter", {"message": "b", "process_id": pid})
                await wait_until(lambda: heard.count(uri) >= 1, "the update of the turn")
                await client.call_tool("run_counter", {"message": "c", "process_id": pid})
                await wait_until(lambda: heard.count(uri) >= 2, "the update of the second turn")
                group.cancel_scope.cancel()
        assert heard.count(uri) == 2


async def test_the_tree_shows_what_each_spawned_expert_and_copy_cost(tmp_path: Path, anthropic_env: Any):
    fake = anthropic_env
    programs = write_programs(
        tmp_path / "team",
        {
            "lead.toml": CLAUDE + '[tools]\nbuiltin = ["spawn"]\n[linked_programs]\nexpert = "expert.toml"\n',
            "expert.toml": CLAUDE,
        },
    )
    fake.push(
        call("spawn", program_name="expert", prompt="the answer?"), Turn(text="42"), Turn(text="It is 42.")
    )
    server = llmproc_mcp(programs, "--state", str(tmp_path / "state.db"))
    server.env = {**(server.env or {}), "ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.url}
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("run_lead", {"message": "ask the expert"})
        pid = result.structured_content["process_id"]
        copy = (await client.call_tool("fork", {"process_id": pid})).structured_content["process_id"]
        ((_, raw),) = contents(await client.read_resource(f"llmproc://processes/{pid}/tree"))
        ((_, markdown),) = contents(await client.read_resource(f"llmproc://processes/{pid}"))
    tree = json.loads(raw)
    assert tree["process_id"] == pid and tree["program"] == "lead"
    spawned, copied = tree["children"]
    assert spawned["kind"] == "spawn" and spawned["program"] == "expert"
    assert spawned["cost_usd"] > 0 and spawned["usage"]["output_tokens"] > 0
    assert spawned["process_id"] != pid and spawned["children"] == []
    assert copied["kind"] == "copy" and copied["process_id"] == copy and copied["parent_id"] == pid
    assert tree["cost_usd"] >= spawned["cost_usd"]  # the lead's cost includes its expert's
    assert f"- spawn `expert` (process {spawned['process_id']}): ${spawned['cost_usd']:.4f}" in markdown

    # the record is kept with the process: a restarted server still shows it
    async with Client(server, mode="legacy") as client:
        ((_, raw),) = contents(await client.read_resource(f"llmproc://processes/{pid}/tree"))
    assert json.loads(raw)["children"][0]["process_id"] == spawned["process_id"]
