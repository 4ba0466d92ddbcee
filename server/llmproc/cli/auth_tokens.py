"""`--auth-tokens FILE`: who may call an HTTP server, as principals each holding their own processes.

The file maps principal names to the SHA-256 of their bearer tokens, never the tokens:

    # llmproc-mcp --auth-tokens: make a line with `llmproc-mcp --hash-token < token-file`
    [tokens]
    alice = "sha256:…"
    ci = ["sha256:…", "sha256:…"]   # several tokens (while rotating one)

A principal's processes are its own on every replica that reads the same file, whatever
session or protocol era the request comes in: ownership that holds across servers. Tokens are
long random strings, so one unsalted SHA-256 is enough to keep the file harmless to read; the
digest of a presented token is compared with every entry in constant time. The file is read
again when it changes (at most once a second), so adding or revoking a principal needs no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import tomllib

from ..errors import ServeError

PREFIX = "sha256:"
SINGLE_PRINCIPAL = "token"
"""The principal that a single --auth-token (or LLMPROC_MCP_TOKEN) is."""

log = logging.getLogger("llmproc.mcp_server")


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def hash_line(token: str) -> str:
    """What the file holds for `token`."""
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _Entry:
    principal: str
    digest: bytes


def _entries(path: Path) -> list[_Entry]:
    where = f"--auth-tokens {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ServeError(f"{where}: can not read it: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ServeError(f"{where}: not valid TOML: {err}") from None
    tokens = data.get("tokens")
    unknown = sorted(set(data) - {"tokens"})
    if unknown:
        raise ServeError(f"{where}: unknown key '{unknown[0]}'; principals go under [tokens]")
    if not isinstance(tokens, dict) or not tokens:
        raise ServeError(f'{where}: no [tokens] table; add one line per principal: name = "sha256:…"')
    entries: list[_Entry] = []
    for name, value in tokens.items():
        for hashed in value if isinstance(value, list) else [value]:
            entries.append(_Entry(name, _parse(hashed, f"{where}: tokens.{name}")))
    return entries


def _parse(value: object, where: str) -> bytes:
    text = value if isinstance(value, str) else ""
    hexdigits = text.removeprefix(PREFIX)
    try:
        parsed = bytes.fromhex(hexdigits) if text.startswith(PREFIX) else b""
    except ValueError:
        parsed = b""
    if len(parsed) != 32:
        raise ServeError(
            f'{where} must be "sha256:" and 64 hex digits, the hash of a token (never the token '
            "itself); make one with: llmproc-mcp --hash-token < token-file"
        )
    return parsed


class Principals:
    """Who a bearer token is: from an --auth-tokens file, or the one principal of --auth-token."""

    RELOAD_SECONDS = 1.0

    def __init__(self, entries: list[_Entry], path: Path | None = None) -> None:
        self._entries = entries
        self._path = path
        self._stamp = self._stat()
        self._checked = time.monotonic()

    @classmethod
    def from_file(cls, path: str | Path) -> Principals:
        path = Path(path)
        return cls(_entries(path), path)

    @classmethod
    def single(cls, token: str) -> Principals:
        return cls([_Entry(SINGLE_PRINCIPAL, digest(token))])

    def names(self) -> list[str]:
        return sorted({e.principal for e in self._entries})

    def who(self, token: bytes) -> str | None:
        """The principal holding `token`, or None; every entry is compared, in constant time."""
        self._reload_if_changed()
        presented = hashlib.sha256(token).digest()
        found = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry.principal
        return found

    def _stat(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            info = os.stat(self._path)
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)

    def _reload_if_changed(self) -> None:
        if self._path is None or time.monotonic() - self._checked < self.RELOAD_SECONDS:
            return
        self._checked = time.monotonic()
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._entries = _entries(self._path)
        except ServeError as err:  # keep serving the principals it had: a half-saved file is common
            log.error("%s; still using the principals read before", err)
            return
        log.info("--auth-tokens %s read again: %s", self._path, ", ".join(self.names()))


def print_hash() -> int:
    """`llmproc-mcp --hash-token`: the file's line for the token on stdin (asked for, unechoed,
    at a terminal)."""
    if sys.stdin.isatty():
        import getpass

        token = getpass.getpass("token: ").strip()
    else:
        token = sys.stdin.readline().strip()
    if not token:
        print("llmproc-mcp: error: --hash-token reads a token on stdin; got none", file=sys.stderr)
        return 2
    print(hash_line(token))
    return 0
