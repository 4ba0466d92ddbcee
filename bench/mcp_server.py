"""llmproc-mcp against a bare MCP server, measured in the same run.

    python bench/mcp_server.py            # all three
    python bench/mcp_server.py startup    # or: call, concurrent

startup     start to the first tools/list over stdio: llmproc-mcp with 50 programs against a
            bare MCPServer with one tool (goal: ratio <= 1.2)
first       start to the initialize answer and to tools/list, then the first reply of a program
            on the Anthropic route (fake provider, 0 ms latency) at once and BENCH_HOST_PAUSE
            seconds later (default 2: a host's model choosing the tool), against a second, warm
            call in the same server (goal: after the pause, the first call costs what the second does)
reload      the longest the event loop is held while 1,001 programs are reloaded (one edited so
            that its tool changes), against the longest it is held while idle (goal: under 50 ms)
call        one run_<name> call of a scripted program against a bare echo tool call, over one
            stdio connection (goal: overhead under 1 ms)
concurrent  200 concurrent run_<name> calls over Streamable HTTP against the fake provider with
            200 ms latency, against one call (goal: wall time under 1.5x one call's); the same
            200 calls to a bare MCPServer whose tool sleeps 200 ms are the floor this machine,
            the mcp SDK and its client set, so both ratios are printed
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.lowlevel
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from local_servers import fake_provider, free_port, wait_for_port

BARE_SERVER = textwrap.dedent(
    """
    from mcp.server import MCPServer

    app = MCPServer("bare")

    @app.tool()
    def echo(message: str) -> str:
        return message

    app.run("stdio")
    """
)
BARE_HTTP_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    import uvicorn
    from mcp.server import MCPServer

    app = MCPServer("bare")

    @app.tool()
    async def slow(message: str) -> str:
        await asyncio.sleep(float(sys.argv[2]))
        return message

    uvicorn.run(app.streamable_http_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)
SCRIPTED = '[model]\nname = "s"\nprovider = "scripted"\n[prompt]\nsystem_prompt = "Program {n}."\n'


def programs_dir(count: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="llmproc-bench-"))
    for n in range(count):
        (folder / f"program_{n:02d}.toml").write_text(SCRIPTED.format(n=n))
    return folder


def llmproc_server(programs: Path, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "llmproc.cli.mcp", "--programs", str(programs), *extra]
    )


def bare_server() -> StdioServerParameters:
    script = Path(tempfile.mkdtemp(prefix="llmproc-bench-")) / "bare.py"
    script.write_text(BARE_SERVER)
    return StdioServerParameters(command=sys.executable, args=[str(script)])


async def time_to_tools(server: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(server) as client:
        await client.list_tools()
        return time.perf_counter() - started


async def startup(repeats: int = 7) -> None:
    count = int(os.environ.get("BENCH_PROGRAMS", "50"))
    programs = programs_dir(count)
    ours, bare = [], []
    for _ in range(repeats):  # alternate, so drift hits both alike
        bare.append(await time_to_tools(bare_server()))
        ours.append(await time_to_tools(llmproc_server(programs, "--reload-interval", "0", "--no-state")))
    base, mine = statistics.median(bare), statistics.median(ours)
    print(f"startup to tools/list   bare {base * 1000:7.1f} ms   llmproc-mcp ({count} programs) "
          f"{mine * 1000:7.1f} ms   ratio {mine / base:.2f}")  # fmt: skip


async def first_reply_once(
    programs: Path, env: dict[str, str], pause: float
) -> tuple[float, float, float, float]:
    """Seconds from start to the handshake and to tools/list; then, `pause` seconds later (a
    host's model choosing the tool), the first call, and a second one."""
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "llmproc.cli.mcp", "--programs", str(programs), "--reload-interval", "0", "--no-state"],
        env=env,
    )
    started = time.perf_counter()
    async with Client(server, mode="legacy") as client:
        handshake = time.perf_counter() - started
        await client.list_tools()
        listed = time.perf_counter() - started
        await asyncio.sleep(pause)
        called = time.perf_counter()
        await client.call_tool("run_claude", {"message": "first"})
        first = time.perf_counter() - called
        again = time.perf_counter()
        await client.call_tool("run_claude", {"message": "second"})
        second = time.perf_counter() - again
    return handshake, listed, first, second


async def first(repeats: int = 5) -> None:
    programs = Path(tempfile.mkdtemp(prefix="llmproc-bench-"))
    (programs / "claude.toml").write_text('[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n')
    os.environ.setdefault("BENCH_LATENCY", "0")
    with fake_provider() as fake_url:
        env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake_url}
        for pause in (0.0, float(os.environ.get("BENCH_HOST_PAUSE", "2"))):
            runs = [await first_reply_once(programs, env, pause) for _ in range(repeats)]
            handshake, listed, first_call, second = (statistics.median(c) for c in zip(*runs, strict=True))
            print(f"start to initialize {handshake * 1000:7.1f} ms   to tools/list {listed * 1000:7.1f} ms   "
                  f"first call {pause:g} s later {first_call * 1000:7.1f} ms   "
                  f"second {second * 1000:6.1f} ms   ratio {first_call / second:.2f}")  # fmt: skip


async def longest_stall(work: Any) -> float:
    """The longest gap between 5 ms ticks of the event loop while `work` runs."""
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last - 0.005)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    await work()
    ticker.cancel()
    return max(gaps)


async def reload(count: int = 1001) -> None:
    import gc

    from llmproc.mcp_server.app import LLMProcServer
    from llmproc.mcp_server.catalog import Catalog

    programs = programs_dir(count)
    server = LLMProcServer(Catalog.load(programs))
    await anyio.lowlevel.checkpoint()  # anyio's event loop backend is loaded, as in a serving server
    gc.freeze()  # as llmproc-mcp does once it has started
    idle = await longest_stall(lambda: asyncio.sleep(1.0))
    edited = programs / "program_00.toml"
    edited.write_text(edited.read_text() + '[server]\ndescription = "Edited."\n')
    busy = await longest_stall(server.reload)
    print(f"reload of {count} programs   loop held at most {busy * 1000:6.1f} ms   "
          f"(idle: {idle * 1000:.1f} ms)")  # fmt: skip


async def per_call(client: Client, name: str, arguments: dict[str, str], calls: int) -> float:
    await client.call_tool(name, arguments)  # warm up
    started = time.perf_counter()
    for _ in range(calls):
        await client.call_tool(name, arguments)
    return (time.perf_counter() - started) / calls


async def call(calls: int = 300) -> None:
    programs = programs_dir(1)
    async with (
        Client(bare_server()) as bare,
        Client(llmproc_server(programs, "--reload-interval", "0", "--no-state")) as ours,
    ):
        base = await per_call(bare, "echo", {"message": "hello"}, calls)
        mine = await per_call(ours, "run_program_00", {"message": "hello"}, calls)
    print(f"one call                bare {base * 1000:7.3f} ms   run_<name> {mine * 1000:7.3f} ms"
          f"   overhead {(mine - base) * 1000:.3f} ms")  # fmt: skip


async def one_and_many(url: str, tool: str, count: int) -> tuple[float, float, int]:
    """Seconds for one call, then for `count` calls at once (and how many failed)."""
    async with Client(url) as client:
        await client.call_tool(tool, {"message": "warm up"})
        started = time.perf_counter()
        await client.call_tool(tool, {"message": "one"})
        one = time.perf_counter() - started
        started = time.perf_counter()
        calls = (client.call_tool(tool, {"message": f"call {n}"}) for n in range(count))
        results = await asyncio.gather(*calls)
        many = time.perf_counter() - started
    return one, many, sum(1 for r in results if r.is_error)


@contextmanager
def http_server(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(timeout=10)


async def concurrent(count: int = 200) -> None:
    latency = os.environ.get("BENCH_LATENCY", "0.2")
    script = Path(tempfile.mkdtemp(prefix="llmproc-bench-")) / "bare_http.py"
    script.write_text(BARE_HTTP_SERVER)
    port = free_port()
    with http_server([sys.executable, str(script), str(port), latency], port) as url:
        await wait_for_port(port)
        bare_one, bare_many, _ = await one_and_many(url, "slow", count)
    programs = Path(tempfile.mkdtemp(prefix="llmproc-bench-"))
    (programs / "claude.toml").write_text('[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n')
    port = free_port()
    with fake_provider() as fake_url:
        env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake_url}
        command = [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--transport",
                   "streamable-http", "--port", str(port), "--reload-interval", "0",
                   "--no-state"]  # fmt: skip
        with http_server(command, port, env) as url:
            await wait_for_port(port)
            one, many, failed = await one_and_many(url, "run_claude", count)
    print(f"{count} concurrent calls   bare sleep tool: one {bare_one * 1000:6.1f} ms, "
          f"all {bare_many * 1000:7.1f} ms ({bare_many / bare_one:.2f}x)")  # fmt: skip
    print(f"{'':23}run_claude:      one {one * 1000:6.1f} ms, "
          f"all {many * 1000:7.1f} ms ({many / one:.2f}x)"
          f"   against the bare server's all {many / bare_many:.2f}x   failed {failed}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "which", nargs="*", help="startup, first, reload, call and/or concurrent (default: all)"
    )
    benchmarks = {
        "startup": startup,
        "first": first,
        "reload": reload,
        "call": call,
        "concurrent": concurrent,
    }
    chosen = parser.parse_args().which or list(benchmarks)
    unknown = [name for name in chosen if name not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(benchmarks)}")
    for name in chosen:
        asyncio.run(benchmarks[name]())


if __name__ == "__main__":
    main()
