"""Scale-out: calls per second and server CPU per call over more workers and more replicas.

    python bench/scale.py                  # every configuration, 2,000 calls each
    python bench/scale.py --calls 500 --concurrency 100

Every configuration serves `run_claude` over Streamable HTTP, protocol 2026-07-28, with its
state in a private PostgreSQL cluster (started here, as tests/postgres.py does), and the model
is the fake provider with 200 ms latency (BENCH_LATENCY) in a process of its own:

    1 worker           llmproc-mcp
    2 workers          llmproc-mcp --workers 2
    1..3 replicas      that many llmproc-mcp processes behind nginx, round robin

The load generator is a raw aiohttp poster (each call one POST of a JSON-RPC tools/call, far
cheaper than the mcp client's ~3 ms): `--concurrency` users, each keeping a conversation for
ten turns (`process_id`) before starting another, so every call takes the process's lease, may
load it from the store (another replica served its last turn) and commits one turn. Printed
per configuration (the cheapest of --rounds runs, interleaved): calls/s, server CPU per call
(all its processes) against the 1-worker
figure (goal: at most 1.1x), and the limit: the machine when all its cores were busy, else the
busiest part (the load generator, the fake, nginx, PostgreSQL or the servers). Then the 200-concurrent
figure against one call for 1 and 2 workers next to the bare-server floor (as
bench/mcp_server.py prints it), and the store's cost per turn: PostgreSQL against SQLite at
100 and 10,000 messages of history (goal: a PostgreSQL commit at most 2 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from local_servers import ROOT, free_port, wait_for_port

sys.path.insert(0, str(ROOT / "tests"))
from postgres import cluster, new_database

PROGRAM = '[model]\nname = "claude-haiku-4-5"\nprovider = "anthropic"\nmax_retries = 0\ntimeout = 600\n'
TICKS = os.sysconf("SC_CLK_TCK")
TURNS_PER_CONVERSATION = 10
CONFIGURATIONS = [  # name, replicas, workers per replica
    ("1 worker", 1, 1), ("2 workers", 1, 2), ("1 replica, nginx", 1, 1), ("2 replicas, nginx", 2, 1),
    ("3 replicas, nginx", 3, 1),
]  # fmt: skip


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of processes (threads included)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def postgres_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(entry, "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


class Parts:
    """The processes of one configuration, by part, to read their CPU."""

    def __init__(self) -> None:
        self.servers: list[int] = []
        self.nginx: list[int] = []
        self.fake: list[int] = []

    def snapshot(self) -> dict[str, float]:
        servers = [p for pid in self.servers for p in (pid, *children(pid))]
        nginx = [p for pid in self.nginx for p in (pid, *children(pid))]
        return {
            "servers": cpu_seconds(servers),
            "nginx": cpu_seconds(nginx),
            "fake provider": cpu_seconds(self.fake),
            "PostgreSQL": cpu_seconds(postgres_pids()),
            "load generator": time.process_time(),
        }


@contextmanager
def started(command: list[str], port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)


def llmproc(programs: Path, port: int, state: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--transport",
            "streamable-http", "--port", str(port), "--reload-interval", "0", "--state", state,
            "--max-live-processes", "100000", *extra]  # fmt: skip


async def load(url: str, calls: int, concurrency: int) -> tuple[float, int]:
    """`calls` tools/call POSTs from `concurrency` users; (wall seconds, failures)."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}  # fmt: skip
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json",
               "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call",
               "mcp-name": "run_claude"}  # fmt: skip
    left, failures = [calls], [0]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as http:

        async def user(n: int) -> None:
            process_id, turn = None, 0
            while left[0] > 0:
                left[0] -= 1
                arguments = {"message": f"user {n} turn {turn}"}
                if process_id:
                    arguments["process_id"] = process_id
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": "run_claude", "arguments": arguments, "_meta": meta}}  # fmt: skip
                async with http.post(url, data=json.dumps(body), headers=headers) as response:
                    raw = await response.read()
                try:
                    result = json.loads(raw)["result"]
                    ok = not result.get("isError")
                except (ValueError, KeyError):
                    ok = False
                if not ok:
                    failures[0] += 1
                    process_id = None
                    continue
                turn += 1
                process_id = (
                    None if turn % TURNS_PER_CONVERSATION == 0 else result["structuredContent"]["process_id"]
                )

        started_at = time.perf_counter()
        await asyncio.gather(*(user(n) for n in range(concurrency)))
        return time.perf_counter() - started_at, failures[0]


NGINX = """{user}
worker_processes 1; daemon off; pid {root}/nginx.pid; error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/b; proxy_temp_path {root}/p; fastcgi_temp_path {root}/f;
    uwsgi_temp_path {root}/u; scgi_temp_path {root}/s;
    upstream llmproc {{ {servers} keepalive 256; }}
    server {{ listen 127.0.0.1:{port};
        location /mcp {{ proxy_pass http://llmproc; proxy_http_version 1.1; proxy_set_header Connection "";
                        proxy_set_header Host $host; proxy_buffering off; proxy_read_timeout 1h; }} }}
}}
"""


@contextmanager
def nginx(ports: list[int]) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    root = Path(tempfile.mkdtemp(prefix="llmproc-bench-nginx-"))
    os.chmod(root, 0o755)
    port = free_port()
    servers = " ".join(f"server 127.0.0.1:{p};" for p in ports)
    user = "user root;" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(NGINX.format(user=user, root=root, servers=servers, port=port))
    process = subprocess.Popen(["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)],
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=30)


async def configuration(
    name: str, replicas: int, workers: int, fake: tuple[str, int], database: str, args: argparse.Namespace
) -> dict[str, float]:
    programs = Path(tempfile.mkdtemp(prefix="llmproc-bench-"))
    (programs / "claude.toml").write_text(PROGRAM)
    fake_url, fake_pid = fake
    env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake_url}
    state = new_database(database)
    parts = Parts()
    parts.fake = [fake_pid]
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(replicas):
            port = free_port()
            extra = ("--workers", str(workers)) if workers > 1 else ()
            process = stack.enter_context(started(llmproc(programs, port, state, *extra), port, env))
            parts.servers.append(process.pid)
            await wait_for_port(port)
            ports.append(port)
        if replicas > 1 or name.endswith("nginx"):
            port, front = stack.enter_context(nginx(ports))
            parts.nginx.append(front.pid)
            await wait_for_port(port)
        else:
            port = ports[0]
        url = f"http://127.0.0.1:{port}/mcp"
        await load(url, args.concurrency, args.concurrency)  # warm up: imports, pools, conversations
        before = parts.snapshot()
        wall, failures = await load(url, args.calls, args.concurrency)
        after = parts.snapshot()
    used = {part: after[part] - before[part] for part in after}
    capacity = {"servers": replicas * workers, "nginx": 1, "fake provider": 1, "load generator": 1,
                "PostgreSQL": os.cpu_count() or 1}  # fmt: skip
    cores = os.cpu_count() or 1
    capacity = {part: min(count, cores) for part, count in capacity.items()}  # a part has at most them all
    busiest = max(used, key=lambda part: used[part] / wall / capacity[part])
    busy = used[busiest] / wall / capacity[busiest]
    if sum(used.values()) / wall >= 0.9 * cores:  # every core busy: the machine is the limit
        busiest, busy = (
            f"the machine (servers {used['servers'] / wall:.1f} of its cores)",
            sum(used.values()) / wall / cores,
        )
    return {"rate": args.calls / wall, "cpu": used["servers"] / args.calls, "failures": failures,
            "busiest": busiest, "busy": busy, "cores": sum(used.values()) / wall}  # type: ignore[dict-item]  # fmt: skip


async def concurrent_figure(fake_url: str, database: str, count: int = 200) -> None:
    """200 calls at once against one call: 1 and 2 workers, next to the bare server's floor."""
    from mcp_server import BARE_HTTP_SERVER
    from mcp_server import one_and_many as measured

    script = Path(tempfile.mkdtemp(prefix="llmproc-bench-")) / "bare_http.py"
    script.write_text(BARE_HTTP_SERVER)
    port = free_port()
    latency = os.environ.get("BENCH_LATENCY", "0.2")
    with started([sys.executable, str(script), str(port), latency], port, dict(os.environ)):
        await wait_for_port(port)
        bare_one, bare_many, _ = await measured(f"http://127.0.0.1:{port}/mcp", "slow", count)
    print(f"\n{count} concurrent calls     one call   all {count}   ratio   against the bare server's all")
    print(f"  bare sleep tool      {bare_one * 1000:6.1f} ms  {bare_many * 1000:7.1f} ms"
          f"  {bare_many / bare_one:5.2f}x")  # fmt: skip
    programs = Path(tempfile.mkdtemp(prefix="llmproc-bench-"))
    (programs / "claude.toml").write_text(PROGRAM)
    env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake_url}
    for workers in (1, 2):
        port = free_port()
        extra = ("--workers", str(workers)) if workers > 1 else ()
        with started(llmproc(programs, port, new_database(database), *extra), port, env):
            await wait_for_port(port)
            one, many, failed = await measured(f"http://127.0.0.1:{port}/mcp", "run_claude", count)
        label = f"{workers} worker{'s' if workers > 1 else ''}"
        print(f"  run_claude, {label:9}{one * 1000:6.1f} ms  {many * 1000:7.1f} ms  {many / one:5.2f}x"
              f"   {many / bare_many:5.2f}x   failed {failed}")  # fmt: skip


async def store_cost(database: str, turns: int = 30) -> None:
    """Median seconds per committed turn, PostgreSQL against SQLite, at two history lengths."""
    from llmproc.store import SqliteStore
    from llmproc.store_postgres import PostgresStore
    from persistence import measure_store

    print(f"\nstore cost per turn   {'SQLite':>10}  {'PostgreSQL':>11}  {'PG / SQLite':>11}")
    for length in (100, 10_000):
        with tempfile.TemporaryDirectory() as directory:
            sqlite = await measure_store(SqliteStore(Path(directory) / "s.db"), length, turns)
        postgres = await measure_store(await PostgresStore.connect(new_database(database)), length, turns)
        print(f"  {length:>6,} messages   {sqlite * 1000:7.2f} ms  {postgres * 1000:8.2f} ms"
              f"  {postgres / sqlite:10.2f}x")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each; the cheapest is shown")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; {args.calls} calls, {args.concurrency} at a time; fake provider latency "
          f"{os.environ.get('BENCH_LATENCY', '0.2')} s; state in PostgreSQL")  # fmt: skip
    with cluster() as database, fake_provider_process() as fake:
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in CONFIGURATIONS}
        for _ in range(args.rounds):  # interleaved: a slow moment of the machine hits every one
            for name, replicas, workers in CONFIGURATIONS:
                rounds[name].append(await configuration(name, replicas, workers, fake, database.url, args))
        results = {name: min(runs, key=lambda r: r["cpu"]) for name, runs in rounds.items()}
        base = results["1 worker"]["cpu"]
        print(f"\n{'':19}{'calls/s':>8}  {'server CPU/call':>15}  {'vs 1 worker':>11}  {'failed':>6}"
              "  busiest part")  # fmt: skip
        for name, r in results.items():
            print(f"  {name:17}{r['rate']:8.1f}  {r['cpu'] * 1000:12.2f} ms  {r['cpu'] / base:10.2f}x"
                  f"  {int(r['failures']):>6}  {r['busiest']}, {r['busy']:.0%} busy")  # fmt: skip
        await concurrent_figure(fake[0], database.url)
        await store_cost(database.url)


@contextmanager
def fake_provider_process() -> Iterator[tuple[str, int]]:
    """The fake provider in its own process: (URL, pid), so its CPU is counted apart."""
    fake = subprocess.Popen(
        [sys.executable, "-m", "fake_provider", "--latency", os.environ.get("BENCH_LATENCY", "0.2")],
        cwd=ROOT / "tests", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield fake.stdout.readline().strip(), fake.pid  # type: ignore[union-attr]
    finally:
        fake.stdin.close()  # type: ignore[union-attr]
        fake.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
