"""Load: N concurrent processes through llmproc-mcp over Streamable HTTP.

    python bench/load.py                 # 100, 1,000 and 10,000 processes
    python bench/load.py 1000            # or any sizes

Each call is `run_claude` without a process_id from a sessionless (2026-07-28) client, so
each call starts a new process that then stays in memory, idle. The model is the fake
Anthropic server with 200 ms latency (BENCH_LATENCY to change it). Printed per size:
wall time against one call alone (the baseline, same run), throughput, p50/p99 latency,
failures. Then memory per idle process, measured apart: a fresh server is filled with N
processes 20 calls at a time and its RSS growth divided by N (goal: under 50 KB plus the
history itself; each process here keeps two short messages). With all N calls in flight
at once, RSS also keeps the burst's transient peak, so that growth is printed but is not
the idle cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from local_servers import fake_provider, free_port, wait_for_port

PROGRAM = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\ntimeout = 600\n'


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def load(count: int, fake_url: str, concurrency: int | None = None) -> None:
    """`count` calls, all at once (or at most `concurrency` at a time: the memory fill)."""
    programs = Path(tempfile.mkdtemp(prefix="llmproc-load-"))
    (programs / "claude.toml").write_text(PROGRAM)
    port = free_port()
    env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake_url}
    server = subprocess.Popen(
        [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--transport",
         "streamable-http", "--port", str(port), "--reload-interval", "0", "--no-state",
         "--max-live-processes", str(count + 100)],
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_for_port(port)
        url = f"http://127.0.0.1:{port}/mcp"
        limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)
        async with (
            httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(600)) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            for n in range(20):  # warm up: imports, the SDK client, the connection pool
                await client.call_tool("run_claude", {"message": f"warm {n}"})
            started = time.perf_counter()
            await client.call_tool("run_claude", {"message": "one"})
            one = time.perf_counter() - started
            await asyncio.sleep(0.5)
            before = rss_kb(server.pid)
            latencies: list[float] = []
            gate = asyncio.Semaphore(concurrency or count)

            async def timed(n: int) -> bool:
                async with gate:
                    began = time.perf_counter()
                    result = await client.call_tool("run_claude", {"message": f"call {n}"})
                    latencies.append(time.perf_counter() - began)
                    return not result.is_error

            started = time.perf_counter()
            outcomes = await asyncio.gather(*(timed(n) for n in range(count)), return_exceptions=True)
            wall = time.perf_counter() - started
            await asyncio.sleep(1.0)
            after = rss_kb(server.pid)
        failed = sum(1 for o in outcomes if o is not True)
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        per_process = (after - before) * 1024 / count
        if concurrency:  # few calls in flight: RSS growth is what the idle processes keep
            print(f"{count:>6} processes, {concurrency} at a time: memory per idle process "
                  f"{per_process / 1024:5.1f} KB (server RSS {before / 1024:.0f} -> {after / 1024:.0f} MB)",
                  flush=True)  # fmt: skip
            return
        print(
            f"{count:>6} processes at once  wall {wall:7.2f} s"
            f"  ({wall / one:6.1f}x one call of {one * 1000:.0f} ms)"
            f"  {count / wall:7.1f} calls/s  p50 {p50 * 1000:6.0f} ms  p99 {p99 * 1000:6.0f} ms"
            f"  failed {failed}  RSS growth {per_process / 1024:5.1f} KB per process",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sizes", nargs="*", type=int, help="how many processes (default: 100 1000 10000)")
    sizes = parser.parse_args().sizes or [100, 1000, 10_000]
    with fake_provider() as fake_url:
        for size in sizes:
            asyncio.run(load(size, fake_url))
        for size in sizes:
            asyncio.run(load(size, fake_url, concurrency=20))


if __name__ == "__main__":
    main()
