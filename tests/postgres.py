"""A private PostgreSQL cluster for the tests: initdb into a temporary directory, served on a free
loopback port, stopped at the end. PostgreSQL refuses to run as root, so as root the cluster is
run as the `postgres` user (`.ci/run` installs the Debian package, which creates it)."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _binary(name: str) -> str:
    """A PostgreSQL program; as root on Debian the package is installed on first use (`.ci/run`
    installs it up front)."""
    found = _installed(name)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
            subprocess.run(command, check=True, capture_output=True, timeout=900, env=env)
        found = _installed(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)")
    return found


def _installed(name: str) -> str | None:
    debian = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)  # not on PATH there
    return shutil.which(name) or (debian[0] if debian else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_cluster_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


class Cluster:
    """A running cluster: `url` is its `llmproc` database (user `llmproc`, password `secret`);
    `stop` and `start` restart it (a database that goes away under a running server)."""

    def __init__(self, data: Path, log: Path, port: int, sockets: Path) -> None:
        self.data, self.log, self.port, self.sockets = data, log, port, sockets
        self.url = f"postgresql://llmproc:secret@127.0.0.1:{port}/llmproc"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -h 127.0.0.1 -F"
        subprocess.run(
            _as_cluster_user(
                [_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                 "-t", "300", "start"]
            ),
            check=True, capture_output=True, timeout=360,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_cluster_user(
                [_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "300", "stop"]
            ),
            capture_output=True, timeout=360,
        )  # fmt: skip


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A running cluster of its own, stopped and removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="llmproc-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    password = root / "password"
    password.write_text("secret\n")
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sockets, password):
            os.chown(path, user.pw_uid, user.pw_gid)
    running = Cluster(data, root / "log", _free_port(), sockets)
    try:
        subprocess.run(
            _as_cluster_user([_binary("initdb"), "-D", str(data), "-U", "llmproc", "--pwfile", str(password),
                              "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"]),
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        running.start()
        _create_database(running.port)
        yield running
    finally:
        running.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def _create_database(port: int, name: str = "llmproc") -> None:
    env = {**os.environ, "PGPASSWORD": "secret"}
    command = [_binary("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "llmproc", name]
    subprocess.run(command, check=True, capture_output=True, timeout=120, env=env)


def new_database(url: str) -> str:
    """A new, empty database on the cluster at `url`; returns its URL."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    name = f"t_{secrets.token_hex(6)}"
    _create_database(port, name)
    return url.rsplit("/", 1)[0] + f"/{name}"
