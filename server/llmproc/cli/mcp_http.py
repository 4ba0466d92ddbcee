"""llmproc-mcp over HTTP (Streamable HTTP and SSE), as its command line configures it.

HTTP binds to 127.0.0.1 unless told otherwise, checks Host and Origin against DNS rebinding on
every bind address, and with --auth-token (or LLMPROC_MCP_TOKEN) requires that bearer token
on every request, or with --auth-tokens FILE one of the principals' tokens (auth_tokens.py);
it refuses to listen beyond loopback without one unless told to. The principal a request
authenticates as owns the processes it makes, on every replica.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import socket
import sys
from typing import Any

from .auth_tokens import Principals
from .session_router import WORKERS_DIR, SessionNames, SessionRouter, socket_path

TOKEN_VARIABLE = "LLMPROC_MCP_TOKEN"


class BearerTokenMiddleware:
    """Refuses HTTP requests without `Authorization: Bearer <token>` of a known principal: the
    scheme compared case-insensitively (RFC 7235), the token in constant time, and a request
    with more than one Authorization header refused (which one a proxy or framework reads is not
    ours to guess). The principal goes into the request's scope, for `caller_of`."""

    def __init__(self, app: Any, principals: Principals) -> None:
        from ..mcp_server.callers import PRINCIPAL_KEY

        self.app = app
        self.principals = principals
        self.key = PRINCIPAL_KEY

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = [value for name, value in scope.get("headers") or [] if name == b"authorization"]
            if len(given) > 1:
                await refuse(send, 400, "bad request: more than one Authorization header")
                return
            scheme, _, credentials = (given[0] if given else b"").strip().partition(b" ")
            principal = self.principals.who(credentials.strip()) if scheme.lower() == b"bearer" else None
            if principal is None:
                await refuse(send, 401, "unauthorized: a valid bearer token is required")
                return
            scope = {**scope, self.key: principal}
        await self.app(scope, receive, send)


async def refuse(send: Any, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="llmproc-mcp"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bearer_token(args: argparse.Namespace) -> str | None:
    return args.auth_token or os.environ.get(TOKEN_VARIABLE) or None


def principals(args: argparse.Namespace) -> Principals | None:
    """Who may call: the --auth-tokens file, else the one principal of --auth-token; a ServeError
    says what is wrong with the file."""
    if args.auth_tokens:
        return Principals.from_file(args.auth_tokens)
    token = bearer_token(args)
    return Principals.single(token) if token else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_refusal(args: argparse.Namespace) -> str | None:
    """Why the server must not listen as asked: beyond loopback, no token, and no explicit yes."""
    if args.auth_tokens and args.auth_token:
        return "give --auth-token or --auth-tokens, not both (a single token is one principal of the file)"
    if is_loopback(args.host) or bearer_token(args) or args.auth_tokens or args.allow_no_auth:
        return None
    return (
        f"--host {args.host} can be reached from other machines, and no --auth-token is set "
        f"(or {TOKEN_VARIABLE}, or --auth-tokens); set one, or pass --allow-no-auth to serve anyone "
        "who can reach it"
    )


def listed(values: list[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def transport_security(args: argparse.Namespace) -> Any:
    """Host and Origin checks on every bind address, not only loopback ones (the SDK's default):
    a page that rebinds its own name to this machine must not drive the server. Loopback names
    are always accepted; other names only when listed (--allowed-hosts, --allowed-origins)."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
    for host in listed(args.allowed_hosts):
        hosts += [host] if ":" in host.lstrip("[").split("]")[-1] else [host, f"{host}:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    origins += listed(args.allowed_origins)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


GRACE_SECONDS = 5
"""How long a stopping HTTP server lets open requests finish before it cancels them."""

KEEP_ALIVE_SECONDS = 75
"""How long an idle client connection stays open. With uvicorn's 5 s, a burst of 10,000 calls
(bench/load.py) failed: the server, far behind, closed connections on which the client had
just sent its next request. With 120 s none failed."""


def forgets_lost_connections(protocol_class: type[Any]) -> type[Any]:
    """uvicorn's HTTP protocol with its keep-alive timer stopped however the connection ends.

    uvicorn stops the timer only when a connection closes cleanly; one reset by the client
    stays in memory, its buffers included, until the timer fires (KEEP_ALIVE_SECONDS later).
    """

    class ForgetsLostConnections(protocol_class):
        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            unset = getattr(self, "_unset_keepalive_if_required", None)
            if unset is not None:
                unset()

    return ForgetsLostConnections


def _unix_listener(path: str) -> socket.socket:
    """The worker's own socket, where other workers pass on requests of its sessions."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by the worker this one replaces
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(path)
    unix.listen(512)
    unix.setblocking(False)
    return unix


async def serve_http(
    server: Any, args: argparse.Namespace, listener: socket.socket, callers: Principals | None
) -> None:
    import uvicorn

    security = transport_security(args)
    if args.transport == "sse":
        app: Any = server.mcp.sse_app(transport_security=security)
    else:
        app = server.mcp.streamable_http_app(
            host=args.host, session_idle_timeout=args.session_timeout, transport_security=security
        )
    from ..mcp_server.sessions import SessionEnds

    app = SessionEnds(app, server.end_session)  # an ended session's processes leave memory
    sockets, router = [listener], None
    workers_dir = os.environ.get(WORKERS_DIR)
    if getattr(args, "worker_index", None) is not None and workers_dir:
        app = router = SessionRouter(app, args.worker_index, workers_dir)  # sessions across workers
        sockets.append(_unix_listener(socket_path(workers_dir, args.worker_index)))
    if getattr(args, "replica_name", None):
        app = SessionNames(app, args.replica_name)  # a balancer routes sessions by this name
    if callers is not None:
        app = BearerTokenMiddleware(app, callers)
    elif not is_loopback(args.host):
        logging.getLogger("llmproc.mcp_server").warning(
            "serving on %s without a bearer token: anyone who can reach it can run your programs", args.host
        )
    path = "/sse" if args.transport == "sse" else "/mcp"
    port = listener.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    if getattr(args, "worker_index", None) is None:  # a worker's supervisor says where it serves
        print(f"llmproc-mcp: serving {len(server.catalog.programs)} programs at http://{host}:{port}{path}",
              file=sys.stderr)  # fmt: skip
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", lifespan="on",
        timeout_graceful_shutdown=GRACE_SECONDS, timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )  # fmt: skip
    config.load()
    config.http_protocol_class = forgets_lost_connections(config.http_protocol_class)
    http = uvicorn.Server(config)
    serving = asyncio.ensure_future(http.serve(sockets=sockets))
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:  # embedded and cancelled: shut down as on Ctrl-C, so the
        http.should_exit = True  # app's lifespan (and every session with it) ends, not left pending
        await asyncio.wait({serving}, timeout=GRACE_SECONDS + 2)
        serving.cancel()
        raise
    finally:  # whatever happened, the port is free again
        for asyncio_server in getattr(http, "servers", []):
            asyncio_server.close()
        for each in sockets:
            each.close()
        if router is not None:
            await router.aclose()
