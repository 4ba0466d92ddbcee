"""Several llmproc-mcp replicas on one state store, behind a real nginx, for the scale-out tests.

Everything runs on loopback ports the tests pick: each replica is `llmproc-mcp` over Streamable
HTTP in its own process, and nginx is started with a configuration of its own in a temporary
directory (round robin over the replicas, as the README's deployment section shows).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fake_provider import FakeProviderServer, Turn
from http_servers import free_port

NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream llmproc {{
{servers}
        keepalive 32;
    }}
{affinity}
    server {{
        listen 127.0.0.1:{port};
        location /mcp {{
            proxy_pass http://$llmproc_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def wait_for_port(port: int, process: subprocess.Popen[Any], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on port {port} within {timeout:g}s") from None
            time.sleep(0.05)


class Replica:
    """One llmproc-mcp server process; its log is kept, to read what it said."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self._command = [*command, "--port", str(self.port)]
        self._env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self._command, env=self._env, stdout=log, stderr=log)
        wait_for_port(self.port, self.process, f"replica on port {self.port}")

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=60)

    def said(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped one must run to end
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


class Nginx:
    """nginx balancing round robin over `ports`, until stopped."""

    def __init__(self, ports: list[int], root: Path, *, affinity: bool = False) -> None:
        """`affinity`: as the README's deployment section configures it, each 2025-era session's
        requests go to the replica named in its Mcp-Session-Id (replica n runs with
        --replica-name rn), and a 2026-07-28 task's tasks/* to the one named in its Mcp-Name
        (the task id); other requests round robin."""
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(binary):
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx; .ci/run does)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in ports)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = root / "nginx.conf"
        if affinity:
            groups = "".join(
                f"    upstream r{n} {{ server 127.0.0.1:{p}; keepalive 8; }}\n" for n, p in enumerate(ports)
            )
            routes = "".join(f"        ~(^|\\|)r{n}\\. r{n};\n" for n in range(len(ports)))
            pinned = (
                f'{groups}    map "$http_mcp_session_id|$http_mcp_name" $llmproc_upstream {{\n{routes}'
                "        default llmproc;\n    }"
            )
        else:
            pinned = "    map $http_mcp_session_id $llmproc_upstream { default llmproc; }"
        conf.write_text(
            NGINX_CONF.format(user=user, root=root, servers=servers, port=self.port, affinity=pinned)
        )
        self.process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for_port(self.port, self.process, "nginx")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGQUIT)  # graceful: let open requests end
        try:
            self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate(timeout=30)


class Deployment:
    def __init__(self, replicas: list[Replica], nginx: Nginx) -> None:
        self.replicas, self.nginx = replicas, nginx

    @property
    def url(self) -> str:
        return self.nginx.url


@contextmanager
def deployment(
    programs: Path, state: str, env: dict[str, str], *extra: str, replicas: int = 3, affinity: bool = False
) -> Iterator[Deployment]:
    """`replicas` llmproc-mcp servers on `state`, and nginx in front of them."""
    root = Path(tempfile.mkdtemp(prefix="llmproc-replicas-"))
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
    command = [sys.executable, "-m", "llmproc.cli.mcp", "--programs", str(programs), "--transport",
               "streamable-http", "--state", state, "--log-level", "INFO", "--reload-interval", "0",
               *extra]  # fmt: skip
    started: list[Replica] = []
    nginx = None
    try:
        for n in range(replicas):
            named = ["--replica-name", f"r{n}"] if affinity else []
            replica = Replica([*command, *named], env, root / f"replica-{n}.log")
            replica.start()
            started.append(replica)
        nginx = Nginx([r.port for r in started], root, affinity=affinity)
        yield Deployment(started, nginx)
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in started:
            replica.stop()
        shutil.rmtree(root, ignore_errors=True)


class Gate:
    """Holds the fake provider's answers to messages that say "hold", until opened: runs in
    flight for as long as a test needs them, with no clock involved."""

    def __init__(self, fake: FakeProviderServer) -> None:
        self._open = threading.Event()
        self._lock = threading.Lock()
        self.held = 0
        fake.responder = self._answer

    def _answer(self, view: Any, body: Any) -> Turn:
        said = [text for text in _user_texts(body)]
        if said and "hold" in said[-1]:
            with self._lock:
                self.held += 1
            self._open.wait(timeout=300)
        return Turn(text=" | ".join(said))

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()


def _user_texts(body: Any) -> list[str]:
    """The user's messages in a request, in order: what the model saw of the conversation."""
    texts = []
    for message in body.get("messages", []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [block["text"] for block in content if block.get("type") == "text"]
    return texts
