"""A pseudo-terminal session with a command-line program, read the way a user sees it."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence

ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>78])")


def _take_terminal() -> None:
    """In the child: make the pty its controlling terminal, so Ctrl-C is a SIGINT to it."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """Runs `argv` on a 100x24 pty and collects the text it writes."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], cwd: str | None = None) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        self.proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.raw = ""
        self.seen = 0  # `expect` searches text written after the previous match

    @property
    def text(self) -> str:
        """Everything written so far, without terminal escape sequences or carriage returns."""
        return ANSI.sub("", self.raw).replace("\r", "")

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the child closed the terminal
                chunk = b""
            self.raw += chunk.decode("utf-8", errors="replace")

    def expect(self, pattern: str, timeout: float = 20.0) -> str:
        """Wait until `pattern` (a regex) appears after the last match; return the text up to it."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.text[self.seen :])
            if found:
                start = self.seen
                self.seen += found.end()
                return self.text[start : self.seen]
            if time.monotonic() > deadline or (self.proc.poll() is not None and not self._pending()):
                raise AssertionError(f"{pattern!r} did not appear; the terminal shows:\n{self.text[-3000:]}")
            self._read(0.05)

    def _pending(self) -> bool:
        ready, _, _ = select.select([self.master], [], [], 0.05)
        if ready:
            self._read(0)
        return bool(ready)

    def type(self, text: str) -> None:
        """Type `text` as keystrokes; end a line with '\\r' (the Enter key)."""
        os.write(self.master, text.encode())

    def line(self, text: str) -> None:
        self.type(text + "\r")

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        return self.proc.wait(timeout=1)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)
