"""`llmproc-mcp --programs DIR`: publish a directory of programs as MCP tools.

Transports: stdio (the default, for Claude Desktop, Claude Code, VS Code), Streamable HTTP
and SSE. HTTP binds to 127.0.0.1 unless told otherwise, checks Host and Origin against DNS
rebinding, and with --auth-token (or LLMPROC_MCP_TOKEN) requires that bearer token on every
request. Logs go to stderr, never stdout (stdout is the protocol on stdio).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio

from ..errors import ServeError, StoreError
from . import add_version, mcp_http
from .mcp_http import TOKEN_VARIABLE

STATE_VARIABLE = "LLMPROC_STATE"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (0 to 65535)")
    return port


def _replica_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", text):
        raise argparse.ArgumentTypeError(f"'{text}' is not a replica name (letters, digits, - and _)")
    return text


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number of seconds")
    return value


def _not_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds (0 or more)")
    return value


def _listen(host: str, port: int, *, share: bool = False, listen: bool = True) -> socket.socket:
    """Bind the HTTP port before saying where the server is, so a port in use or an unknown
    host is one clear start-up error rather than a uvicorn log line after "serving".
    `share`: with SO_REUSEPORT, for --workers (bound, not listening, it only reserves the port)."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if share:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(address)
        if listen:
            listener.listen(2048)
    except OSError:
        listener.close()
        raise
    listener.setblocking(False)
    return listener


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmproc-mcp",
        description="Publish llmproc programs as MCP tools (run_<program>, spawn, reset, fork).",
    )
    add_version(parser)
    parser.add_argument("--programs", metavar="DIR", help="directory of program files (*.toml)")
    parser.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio")
    parser.add_argument(
        "--host", default="127.0.0.1", help="HTTP transports: address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=_port, default=8000, help="HTTP transports: port (default 8000; 0 picks a free one)"
    )
    parser.add_argument(
        "--auth-token",
        default=None,
        help=f"HTTP transports: require this bearer token (or set {TOKEN_VARIABLE})",
    )
    parser.add_argument(
        "--auth-tokens",
        default=None,
        metavar="FILE",
        help="HTTP transports: require the bearer token of one of the principals in FILE (TOML: "
        '[tokens] name = "sha256:..."); each principal owns its processes on every replica',
    )
    parser.add_argument(
        "--hash-token",
        action="store_true",
        help="print the --auth-tokens line for the token read on stdin, and exit",
    )
    parser.add_argument(
        "--allowed-hosts",
        action="append",
        default=[],
        metavar="HOSTS",
        help="HTTP transports: Host header values to accept besides loopback names (comma-separated; "
        "'name' takes any port, 'name:port' one); every other Host is refused (DNS rebinding)",
    )
    parser.add_argument(
        "--allowed-origins",
        action="append",
        default=[],
        metavar="ORIGINS",
        help="HTTP transports: browser Origins to accept besides loopback ones (comma-separated, "
        "for example https://app.example.com)",
    )
    parser.add_argument(
        "--allow-no-auth",
        action="store_true",
        help="HTTP transports: serve on an address beyond loopback without --auth-token "
        "(anyone who can reach it can run your programs)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="forget processes idle this long (with --state they stay on disk)",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="Streamable HTTP: end a session that sent nothing this long (a client that vanished)",
    )
    parser.add_argument(
        "--max-live-processes",
        type=int,
        default=10_000,
        metavar="N",
        help="processes kept in memory in all; past it the least recently used idle one leaves",
    )
    parser.add_argument(
        "--max-processes", type=int, default=100, metavar="N", help="live processes one client may keep"
    )
    parser.add_argument(
        "--max-sessionless-processes",
        type=int,
        default=1000,
        metavar="N",
        help="live processes that callers without a session (MCP 2026-07-28 over HTTP) keep together",
    )
    parser.add_argument(
        "--reload-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often to look for changed program files (0: never); changes are published at once",
    )
    parser.add_argument(
        "--max-depth",
        type=int,
        default=4,
        metavar="N",
        help="refuse to start when nested deeper than N llmproc-mcp servers (stops cycles)",
    )
    parser.add_argument(
        "--state",
        metavar="PATH|URL",
        help="keep every process in this SQLite file, or in PostgreSQL (postgresql://USER:PASSWORD@"
        "HOST:PORT/DB), so conversations survive restarts (continue one by its process_id); "
        f"default: ${{{STATE_VARIABLE}}} when set, else {default_state_path()}",
    )
    parser.add_argument(
        "--no-state",
        action="store_true",
        help="keep processes in memory only: they end with the server",
    )
    parser.add_argument(
        "--lease-seconds",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="with --state: how long a server's hold on a process it is running lasts unless renewed "
        "(it renews three times as often); another server takes over a process whose holder died after this",
    )
    parser.add_argument(
        "--lease-wait",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="with --state: how long a call waits for a process another server is running, "
        "before it fails as busy",
    )
    parser.add_argument(
        "--heartbeat",
        type=_not_negative,
        default=10.0,
        metavar="SECONDS",
        help="while a run is in flight, send the client progress at least this often (when it asked "
        "for progress), saying what the run is waiting for, so hosts that reset their timeout on "
        "progress keep waiting; 0: progress on model turns and tool calls only",
    )
    parser.add_argument(
        "--max-task-ttl",
        type=_positive,
        default=7 * 24 * 3600.0,
        metavar="SECONDS",
        help="the longest a finished task's result is kept for its client (MCP Tasks); a client "
        "asking for longer gets this; default a week",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="Streamable HTTP: serve the port from N processes sharing the state store (about one "
        "per core); they need a state (--state, or the default file), not --no-state",
    )
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--replica-name",
        type=_replica_name,
        default=None,
        metavar="NAME",
        help="Streamable HTTP: start the ids of the 2025-era sessions this server creates with NAME., "
        "so a load balancer can route each session to its replica by its Mcp-Session-Id",
    )
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def default_state_path() -> Path:
    """Where conversations are kept unless told otherwise: the user's state directory (XDG)."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "llmproc" / "state.db"


def chosen_state(args: argparse.Namespace) -> str | None:
    """The state the server was told to use (--state, else LLMPROC_STATE); None: the default."""
    return args.state or os.environ.get(STATE_VARIABLE) or None


async def open_store(args: argparse.Namespace) -> Any:
    """The store to keep processes in: as chosen, else the default file; None with --no-state,
    or (unless chosen) when an llmproc process started this server.

    A state that was asked for and can not be used stops the server (a StoreError says why);
    the default file that can not be made (a read-only home) leaves a warning and memory."""
    from ..composition import composition_depth
    from ..store import SqliteStore
    from ..store_postgres import PostgresStore, is_url

    if args.no_state:
        if args.state:
            raise StoreError("give --state or --no-state, not both")
        return None
    state = chosen_state(args)
    if state:
        return await PostgresStore.connect(state) if is_url(state) else SqliteStore(state)
    if composition_depth() > 0:  # started by an llmproc process: it lives as long as that one,
        return None  # and a new process must not continue an unrelated one's conversations
    path = default_state_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        store = SqliteStore(path)
    except (OSError, StoreError) as err:
        logging.getLogger("llmproc.mcp_server").warning(
            "conversations are kept in memory only: the default state file %s can not be used (%s); "
            "choose one with --state", path, err,
        )  # fmt: skip
        return None
    logging.getLogger("llmproc.mcp_server").info("conversations are kept in %s", path)
    return store


async def serve(
    args: argparse.Namespace, *, started: Callable[[Any], None] | None = None, own_process: bool = False
) -> int:
    """Run the server until cancelled; `started` is handed the LLMProcServer (for embedding, tests).
    `own_process`: the server is the whole process (the CLI), so it may tune the process itself."""
    from ..composition import DEPTH_VARIABLE, composition_depth
    from ..mcp_server.app import LLMProcServer
    from ..mcp_server.catalog import Catalog, CatalogError
    from ..mcp_server.handles import ProcessTable

    depth = composition_depth()
    if depth > args.max_depth:
        return await _cannot_start(
            args,
            f"this server is nested {depth} llmproc-mcp servers deep ({DEPTH_VARIABLE}), "
            f"more than --max-depth {args.max_depth}; does a program start the server that runs it?",
        )
    try:
        catalog = Catalog.load(args.programs)
    except CatalogError as err:
        return await _cannot_start(args, str(err))
    listener, callers = None, None
    if args.transport != "stdio":
        refusal = mcp_http.exposure_refusal(args)
        if refusal:
            return await _cannot_start(args, refusal)
        try:
            callers = mcp_http.principals(args)
        except ServeError as err:
            return await _cannot_start(args, str(err))
        refusal = _workers_refusal(args)
        if refusal:
            return await _cannot_start(args, refusal)
        try:
            supervising, working = args.workers > 1, args.worker_index is not None
            listener = _listen(args.host, args.port, share=supervising or working, listen=not supervising)
        except OSError as err:
            reason = err.strerror or str(err)
            return await _cannot_start(args, f"can not listen on {args.host} port {args.port}: {reason}")
    try:
        store = await open_store(args)
    except StoreError as err:
        if listener is not None:
            listener.close()
        return await _cannot_start(args, str(err))
    if args.workers > 1:
        assert listener is not None
        if store is None:
            listener.close()
            return await _cannot_start(
                args, f"--workers {args.workers} needs a state store the workers share: give --state "
                "PATH|URL, or leave out --no-state (each worker is a process of its own)",
            )  # fmt: skip
        await store.close()
        return await _supervise(args, listener, len(catalog.programs))
    table = ProcessTable(
        max_per_caller=args.max_processes,
        idle_seconds=args.idle_timeout,
        max_live=args.max_live_processes,
        max_sessionless=args.max_sessionless_processes,
    )
    server = LLMProcServer(
        catalog, transport=args.transport, table=table, max_depth=args.max_depth, store=store,
        lease_seconds=args.lease_seconds, lease_wait=args.lease_wait, heartbeat=args.heartbeat,
        max_task_ttl_ms=int(args.max_task_ttl * 1000),
    )  # fmt: skip
    if args.worker_index is not None:  # a worker: say who serves in the logs, and name its rounds
        server.directory.holder += f" worker {args.worker_index}"
        server.rounds.prefix = f"w{args.worker_index}."  # (session_router.py passes them on)
        server.tasks.prefix = f"w{args.worker_index}."  # and its tasks' ids
    elif getattr(args, "replica_name", None):  # a balancer routes tasks/* by Mcp-Name, the task id
        server.tasks.prefix = f"{args.replica_name}."
    if own_process:  # what start-up built lives as long as the server: later collections skip it
        gc.freeze()  # (not when embedded: the host application's heap is not ours to freeze)
    if started is not None:
        started(server)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.evict_forever)
            tasks.start_soon(_warm_up, server)
            if args.reload_interval > 0:
                tasks.start_soon(_watch, server, args.reload_interval)
            if args.worker_index is not None:
                tasks.start_soon(_stop_with_supervisor)
            if args.transport == "stdio":
                await server.mcp.run_stdio_async()
            else:
                assert listener is not None
                await mcp_http.serve_http(server, args, listener, callers)
            tasks.cancel_scope.cancel()
    finally:
        if listener is not None:
            listener.close()
        await server.aclose()
        if store is not None:
            await store.close()
    return 0


def _workers_refusal(args: argparse.Namespace) -> str | None:
    if args.workers < 1:
        return f"--workers {args.workers}: give at least 1"
    if args.workers > 1 and args.transport != "streamable-http":
        return (
            f"--workers serves Streamable HTTP, not {args.transport} (an SSE client's stream and its "
            "posts must reach one process); use --transport streamable-http"
        )
    return None


async def _supervise(args: argparse.Namespace, reserved: socket.socket, programs: int) -> int:
    """Serve the port from --workers processes (mcp_workers.py) while `reserved` holds it."""
    from .mcp_workers import supervise

    port = reserved.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    try:
        return await supervise(args.argv, args.workers, port, f"http://{host}:{port}/mcp", programs)
    finally:
        reserved.close()


_ANSWER_GRACE_SECONDS = 5.0
"""After answering a host with the start-up error, how long to wait for it to hang up."""


async def _cannot_start(args: argparse.Namespace, reason: str) -> int:
    """Say why the server can not start, on stderr and, over stdio, to the host itself.

    A host that sees the server exit shows only "Connection closed" (Claude Desktop) or
    "failed to connect": the reason is in a log file few users find. So over stdio every
    request the host sends (initialize first) is answered with an error that carries the
    reason, which hosts show; then the server exits."""
    print(f"llmproc-mcp: error: {reason}", file=sys.stderr)
    if args.transport == "stdio" and not sys.stdin.isatty():  # a person at a terminal read stderr
        await asyncio.to_thread(_answer_with_error, f"llmproc-mcp can not start: {reason}")
    return 3


def _answer_with_error(message: str) -> None:
    """Answer each JSON-RPC request on stdin with `message` until the host hangs up, or a few
    seconds after the first answer (or without any request): a host that keeps the pipe open
    must not keep us."""
    import select

    deadline, answered = time.monotonic() + 2 * _ANSWER_GRACE_SECONDS, False
    buffered = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sys.stdin], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(sys.stdin.fileno(), 65536)
        if not chunk:
            return  # the host hung up
        buffered += chunk
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            try:
                request = json.loads(line)
            except ValueError:
                continue
            if isinstance(request, dict) and "id" in request and "method" in request:
                reply = {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32603, "message": message}}
                sys.stdout.write(json.dumps(reply) + "\n")
                sys.stdout.flush()
                if not answered:
                    answered, deadline = True, time.monotonic() + _ANSWER_GRACE_SECONDS


async def _stop_with_supervisor() -> None:
    from .mcp_workers import until_supervisor_leaves

    await until_supervisor_leaves()


async def _warm_up(server: Any) -> None:
    """Import the provider SDKs of the published programs once the server serves: the handshake
    is not kept waiting for them, and the first call does not pay for them (hosts that time a
    first tool call, or give up on a slow one, see the cost of the second)."""
    from ..providers import warm_up

    await asyncio.sleep(0.05)  # let the transport start and answer the handshake first
    providers = {published.program.provider for published in server.catalog.programs.values()}
    log, started = logging.getLogger("llmproc.mcp_server"), time.perf_counter()
    try:
        await asyncio.to_thread(warm_up, providers)
    except Exception as err:  # a broken SDK install shows on the first call, with its reason
        log.debug("warming up %s failed: %s", providers, err)
        return
    took = time.perf_counter() - started
    log.info("provider SDKs loaded in %.2f s: %s", took, ", ".join(sorted(providers)) or "none")


async def _watch(server: Any, interval: float) -> None:
    """Reload the programs when their files change (polling: no extra dependency, any platform)."""
    stamps = await asyncio.to_thread(server.catalog.files)
    while True:
        await anyio.sleep(interval)
        now = await asyncio.to_thread(server.catalog.files)  # a stat per file: not on the loop
        if now != stamps:
            stamps = now
            await server.reload()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what --workers starts each worker with
    if args.hash_token:
        from .auth_tokens import print_hash

        return print_hash()
    if not args.programs:
        parser.error("the following arguments are required: --programs")
    stderr = logging.StreamHandler(sys.stderr)  # never stdout: on stdio that is the protocol
    stderr.setLevel(args.log_level)
    stderr.setFormatter(logging.Formatter("llmproc-mcp: %(name)s: %(message)s"))
    logging.basicConfig(handlers=[stderr], level=args.log_level)
    logging.getLogger("llmproc").setLevel(min(logging.INFO, logging.getLevelName(args.log_level)))
    try:
        return asyncio.run(_until_stopped(serve(args, own_process=True)))
    except KeyboardInterrupt:
        return 130


async def _until_stopped(serving: Coroutine[Any, Any, int]) -> int:
    """Run the server until SIGINT or SIGTERM (how hosts stop servers: Claude Code sends SIGINT,
    then SIGTERM): runs are cancelled, processes and their MCP servers closed, the state
    database closed. A second signal during that ends the process at once."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    stopping: list[int] = []

    def stop(number: int) -> None:
        if stopping:
            os._exit(128 + number)
        stopping.append(number)
        task.cancel()

    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform
            loop.add_signal_handler(number, stop, number)
    try:
        return await serving
    except asyncio.CancelledError:
        if not stopping:
            raise
        return 128 + stopping[0]


if __name__ == "__main__":
    sys.exit(main())
