"""Builtin file tools confined to the program's roots: read_file, list_dir (and fd_to_file).

A path is resolved (symlinks followed) before it is checked, so neither `..` nor a
symlink that points outside can escape the roots; a refused path is a clear error result
for the model, never an exception for the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ToolError
from .functions import tool

MAX_FILE_BYTES = 10_000_000
MAX_ENTRIES = 1000


class FileRoots:
    """The folders file tools may use; relative paths start at the first one."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = [root.resolve() for root in roots]

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.roots)

    def resolve(self, path: str) -> Path:
        given = Path(path).expanduser()
        candidate = given if given.is_absolute() else self.roots[0] / given
        resolved = candidate.resolve()
        if not any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            via_link = " (through a symbolic link)" if _has_symlink(candidate) else ""
            raise ToolError(
                f"access denied: '{path}' is outside the allowed folders{via_link}; "
                f"allowed: {self.describe()}"
            )
        return resolved


def _has_symlink(path: Path) -> bool:
    return any(p.is_symlink() for p in [path, *path.parents])


def file_tools(roots: FileRoots, names: set[str]) -> list[Callable[..., Any]]:
    """The chosen file tools as function tools bound to `roots`."""

    @tool(access="read")
    def read_file(path: str) -> str:
        """Read a UTF-8 text file.

        Args:
            path: File path, relative to the working folder or absolute inside an allowed folder.
        """
        target = roots.resolve(path)
        if not target.exists():
            raise ToolError(f"file not found: {path}")
        if target.is_dir():
            raise ToolError(f"'{path}' is a folder; use list_dir")
        size = target.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ToolError(f"'{path}' is too large to read ({size:,} bytes; limit {MAX_FILE_BYTES:,})")
        data = target.read_bytes()
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
        entries = sorted(target.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower()))
        lines = []
        for entry in entries[:MAX_ENTRIES]:
            if entry.is_dir():
                lines.append(f"{entry.name}/")
            else:
                try:
                    lines.append(f"{entry.name}  ({entry.stat().st_size:,} bytes)")
                except OSError:
                    lines.append(f"{entry.name}  (unreadable)")
        if len(entries) > MAX_ENTRIES:
            lines.append(f"… and {len(entries) - MAX_ENTRIES:,} more entries")
        return "\n".join(lines) if lines else "(empty folder)"

    chosen = {"read_file": read_file, "list_dir": list_dir}
    return [function for name, function in chosen.items() if name in names]
