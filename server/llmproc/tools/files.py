"""Builtin file tools confined to the program's roots: read_file, list_dir (and fd_to_file).

A path is resolved (symlinks followed) before it is checked, so neither `..` nor a
symlink that points outside can escape the roots; a refused path is a clear error result
for the model, never an exception for the caller.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ToolError
from ..special_files import kind_of
from .functions import tool

MAX_FILE_BYTES = 10_000_000
_LOOP = "is a symbolic link loop"
MAX_ENTRIES = 1000


class FileRoots:
    """The folders file tools may use; relative paths start at the first one."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = [root.resolve() for root in roots]

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.roots)

    def resolve(self, path: str) -> Path:
        if "\x00" in path:
            raise ToolError("the path holds a NUL character; no file is named that way")
        given = Path(path).expanduser()
        candidate = given if given.is_absolute() else self.roots[0] / given
        try:
            resolved = candidate.resolve()
        except RuntimeError:  # Python < 3.13 reports a symbolic link loop this way
            raise ToolError(f"'{path}' {_LOOP}") from None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise ToolError(f"'{path}' {_LOOP}") from None
            raise ToolError(f"'{path}' can not be resolved: {err.strerror or err}") from None
        if not any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            via_link = " (through a symbolic link)" if _has_symlink(candidate) else ""
            raise ToolError(
                f"access denied: '{path}' is outside the allowed folders{via_link}; "
                f"allowed: {self.describe()}"
            )
        return resolved


def _has_symlink(path: Path) -> bool:
    return any(p.is_symlink() for p in [path, *path.parents])


def _read_regular_file(target: Path, path: str) -> bytes:
    """The file's bytes, at most MAX_FILE_BYTES of them, counted as they are read: a size from
    stat can not be trusted (/dev/zero says 0 and never ends). What is not a regular file
    (a FIFO that blocks forever, a device, a socket) is refused before it is opened."""
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        raise ToolError(f"file not found: {path}") from None
    except OSError as err:
        raise ToolError(f"'{path}' can not be read: {err.strerror}") from None
    if stat.S_ISDIR(mode):
        raise ToolError(f"'{path}' is a folder; use list_dir")
    if not stat.S_ISREG(mode):
        raise ToolError(f"'{path}' is not a regular file ({kind_of(mode)}); read_file reads files only")
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, open does not block
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ToolError(f"'{path}' is not a regular file; read_file reads files only")
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ToolError(f"'{path}' can not be read: {err.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ToolError(f"'{path}' is too large to read (more than {MAX_FILE_BYTES:,} bytes)")
    return data


def _entry_line(roots: FileRoots, entry: Path) -> str:
    """One list_dir line. A symbolic link is shown as such, and its target's size only when
    the target is inside the roots: a link must not reveal anything about files outside."""
    try:
        if entry.is_symlink():
            try:
                target = roots.resolve(str(entry))
            except ToolError as err:
                loop = _LOOP in str(err)
                return f"{entry.name}  ({'link loop' if loop else 'link outside the allowed folders'})"
            if not target.exists():
                return f"{entry.name}  (broken link)"
            if target.is_dir():
                return f"{entry.name}/  (link)"
            return f"{entry.name}  ({target.stat().st_size:,} bytes, link)"
        info = entry.lstat()
    except OSError:
        return f"{entry.name}  (unreadable)"
    if stat.S_ISDIR(info.st_mode):
        return f"{entry.name}/"
    if not stat.S_ISREG(info.st_mode):
        return f"{entry.name}  ({kind_of(info.st_mode)})"
    return f"{entry.name}  ({info.st_size:,} bytes)"


def file_tools(roots: FileRoots, names: set[str]) -> list[Callable[..., Any]]:
    """The chosen file tools as function tools bound to `roots`."""

    @tool(access="read")
    def read_file(path: str) -> str:
        """Read a UTF-8 text file.

        Args:
            path: File path, relative to the working folder or absolute inside an allowed folder.
        """
        target = roots.resolve(path)
        data = _read_regular_file(target, path)
        if b"\x00" in data:
            raise ToolError(f"'{path}' is a binary file, not text")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ToolError(f"'{path}' is not UTF-8 text") from None

    @tool(access="read")
    def list_dir(path: str = ".") -> str:
        """List a folder: one entry per line, folders end with '/', files show their size.

        Args:
            path: Folder path, relative to the working folder or absolute inside an allowed folder.
        """
        target = roots.resolve(path)
        if not target.exists():
            raise ToolError(f"folder not found: {path}")
        if not target.is_dir():
            raise ToolError(f"'{path}' is a file; use read_file")
        entries = sorted(target.iterdir(), key=lambda p: (p.is_symlink() or not p.is_dir(), p.name.lower()))
        lines = []
        for entry in entries[:MAX_ENTRIES]:
            lines.append(_entry_line(roots, entry))
        if len(entries) > MAX_ENTRIES:
            lines.append(f"… and {len(entries) - MAX_ENTRIES:,} more entries")
        return "\n".join(lines) if lines else "(empty folder)"

    chosen = {"read_file": read_file, "list_dir": list_dir}
    return [function for name, function in chosen.items() if name in names]
