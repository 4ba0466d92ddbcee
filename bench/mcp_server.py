"""llmproc-mcp against a bare MCP server, measured in the same run.

    python bench/mcp_server.py            # all three
    python bench/mcp_server.py startup    # or: call, concurrent

startup     start to the first tools/list over stdio: llmproc-mcp with 50 programs against a
            bare MCPServer with one tool (goal: ratio <= 1.2)
call        one run_<name> call of a scripted program against a bare echo tool call, over one
            stdio connection (goal: overhead under 1 ms)
concurrent  200 concurrent run_<name> calls over Streamable HTTP against the fake provider with
            200 ms latency, against one call (goal: wall time under 1.5x one call's)
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
from pathlib import Path

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
        ours.append(await time_to_tools(llmproc_server(programs, "--reload-interval", "0")))
    base, mine = statistics.median(bare), statistics.median(ours)
    print(f"startup to tools/list   bare {base * 1000:7.1f} ms   llmproc-mcp ({count} programs) "
          f"{mine * 1000:7.1f} ms   ratio {mine / base:.2f}")  # fmt: skip


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
        Client(llmproc_server(programs, "--reload-interval", "0")) as ours,
    ):
        base = await per_call(bare, "echo", {"message": "hello"}, calls)
        mine = await per_call(ours, "run_program_00", {"message": "hello"}, calls)
    print(f"one call                bare {base * 1000:7.3f} ms   run_<name> {mine * 1000:7.3f} ms"
          f"   overhead {(mine - base) * 1000:.3f} ms")  # fmt: skip


async def concurrent(count: int = 200) -> None:
    programs = Path(tempfile.mkdtemp(prefix="llmproc-bench-"))
    (programs / "claude.toml").write_text('[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\n')
    port = free_port()
    with fake_provider() as url:
        env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": url}
        server = subprocess.Popen(
            [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--transport",
             "streamable-http", "--port", str(port), "--reload-interval", "0"],
            env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await wait_for_port(port)
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                await client.call_tool("run_claude", {"message": "warm up"})
                started = time.perf_counter()
                await client.call_tool("run_claude", {"message": "one"})
                one = time.perf_counter() - started
                started = time.perf_counter()
                results = await asyncio.gather(
                    *(client.call_tool("run_claude", {"message": f"call {n}"}) for n in range(count))
                )
                many = time.perf_counter() - started
            failed = sum(1 for r in results if r.is_error)
            print(f"{count} concurrent calls   one {one * 1000:7.1f} ms   all {many * 1000:7.1f} ms"
                  f"   ratio {many / one:.2f}   failed {failed}")  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", nargs="*", help="startup, call and/or concurrent (default: all)")
    benchmarks = {"startup": startup, "call": call, "concurrent": concurrent}
    chosen = parser.parse_args().which or list(benchmarks)
    unknown = [name for name in chosen if name not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(benchmarks)}")
    for name in chosen:
        asyncio.run(benchmarks[name]())


if __name__ == "__main__":
    main()
