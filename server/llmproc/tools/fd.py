"""File descriptors: long texts kept by the kernel and read by the model page by page.

A tool result (or, when asked, a user input) longer than the program's limit is stored
as `fd:N` and the model sees its size, the first page and how to read on with `read_fd`.
With `enable_references`, text the model wraps in `<ref id="NAME">…</ref>` is stored as
`ref:NAME`, so it can hand its own output to `fd_to_file` or to a spawned child.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Collection
from typing import Any, Literal

from ..config import FileDescriptorConfig
from ..errors import ToolError
from .files import FileRoots
from .functions import tool

_REFERENCE = re.compile(r'<ref id="([A-Za-z0-9_.-]{1,64})">(.*?)</ref>', re.DOTALL)


class _Text:
    """One stored text with its page and line boundaries, computed once."""

    def __init__(self, text: str, page_size: int, source: str) -> None:
        self.text = text
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.page_starts = _page_starts(text, page_size)

    @property
    def lines(self) -> int:
        return len(self.line_starts) - (1 if self.text.endswith("\n") else 0)

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset)


def _page_starts(text: str, size: int) -> list[int]:
    """Page starts: pages hold at most `size` characters and end at a line break when one is near."""
    starts, start = [0], 0
    while len(text) - start > size:
        end = start + size
        newline = text.rfind("\n", start + size // 2, end)
        start = newline + 1 if newline != -1 else end
        starts.append(start)
    return starts


class FileDescriptors:
    """A process's descriptor table. Copies share the stored strings (they are immutable)."""

    def __init__(self, config: FileDescriptorConfig) -> None:
        self.config = config
        self._files: dict[str, _Text] = {}
        self._next = 1

    @property
    def next_number(self) -> int:
        """N of the next fd:N (kept in snapshots so restored tables never reuse a name)."""
        return self._next

    @next_number.setter
    def next_number(self, value: int) -> None:
        self._next = value

    def source(self, fd: str) -> str:
        return self._entry(fd).source

    @classmethod
    def for_process(
        cls, config: FileDescriptorConfig, builtin: Collection[str], inherited: FileDescriptors | None
    ) -> FileDescriptors | None:
        """A process's table: a copy of `inherited` (a fork's), else a new one when the program
        uses descriptors, else None."""
        if inherited is not None:
            return inherited.copy()
        wanted = config.enabled or not {"read_fd", "fd_to_file"}.isdisjoint(builtin)
        return cls(config) if wanted else None

    def paged_input(self, text: str) -> str:
        """A user's message as the model gets it: over the limit (with [file_descriptor]
        page_user_input) it is stored here and the model is told how to read it."""
        config = self.config
        if not config.page_user_input:
            return text
        paged = self.page_if_long(text, source="The user's message", limit=config.max_input_chars)
        return text if paged is None else paged

    def copy(self, only: list[str] | None = None) -> FileDescriptors:
        table = FileDescriptors(self.config)
        table._files = {k: v for k, v in self._files.items() if only is None or k in only}
        table._next = self._next
        return table

    def __contains__(self, fd: str) -> bool:
        return fd in self._files

    def names(self) -> list[str]:
        return list(self._files)

    def store(self, text: str, *, source: str, name: str | None = None) -> str:
        if name is None:
            name = f"fd:{self._next}"
            self._next += 1
        self._files[name] = _Text(text, self.config.default_page_size, source)
        return name

    def hand_on(self, names: list[str] | tuple[str, ...], to: FileDescriptors | None) -> str:
        """What a child is told of the descriptors `names` handed to it: adopted into `to`, its
        own table, or, for a child without one, their text inline."""
        notes = []
        for name in names:
            text = self.text(name)
            if to is not None:
                to.adopt(name, self)
                notes.append(f"{name} ({len(text):,} characters; read it with read_fd)")
            else:
                notes.append(f'<fd name="{name}">\n{text}\n</fd>')
        return "\n\nDescriptors handed to you:\n" + "\n".join(notes)

    def restore(self, saved: dict[str, dict[str, str]], next_number: int | None) -> None:
        """Take back the descriptors of a snapshot."""
        for name, entry in saved.items():
            self.store(entry["text"], source=entry.get("source", ""), name=name)
        if next_number:
            self.next_number = max(self.next_number, next_number)

    def adopt(self, name: str, other: FileDescriptors) -> None:
        """Give this table a descriptor of another table under the same name."""
        self._files[name] = other._entry(name)

    def text(self, fd: str) -> str:
        return self._entry(fd).text

    def _entry(self, fd: str) -> _Text:
        entry = self._files.get(fd.strip())
        if entry is None:
            known = ", ".join(self._files) or "none"
            raise ToolError(f"unknown file descriptor '{fd}'; open descriptors: {known}")
        return entry

    # -- what the model sees -------------------------------------------------------------------

    def page_if_long(self, text: str, *, source: str, limit: int) -> str | None:
        """The message that replaces `text` when it is over `limit` characters (else None)."""
        if len(text) <= limit:
            return None
        fd = self.store(text, source=source)
        entry = self._files[fd]
        first = self.read(fd, mode="page", start=1)
        return (
            f"{source} is {len(text):,} characters ({entry.lines:,} line{'s' if entry.lines != 1 else ''}), "
            "too long to show at once; "
            f"it is stored as {fd} ({len(entry.page_starts)} pages). Read on with read_fd. "
            f"First page:\n{first}"
        )

    def read(
        self,
        fd: str,
        *,
        mode: Literal["page", "lines", "chars"] = "page",
        start: int = 1,
        count: int | None = None,
    ) -> str:
        entry = self._entry(fd)
        text, size = entry.text, len(entry.text)
        pages = len(entry.page_starts)
        if mode == "page":
            if not 1 <= start <= pages:
                raise ToolError(f"{fd} has pages 1 to {pages}; page {start} does not exist")
            last = min(pages, start + max(1, count or 1) - 1)
            begin = entry.page_starts[start - 1]
            end = entry.page_starts[last] if last < pages else size
            where = f"page {start}{f'-{last}' if last > start else ''} of {pages}"
            more = f'read_fd(fd="{fd}", start={last + 1})' if last < pages else None
        elif mode == "lines":
            total = entry.lines
            if not 1 <= start <= max(total, 1):
                raise ToolError(f"{fd} has lines 1 to {total}; line {start} does not exist")
            begin = entry.line_starts[start - 1]
            if count is None:  # as many whole lines as fit in a page, at least one
                limit = begin + self.config.default_page_size
                fit = bisect.bisect_right(entry.line_starts, limit) - 1
                stop = len(entry.line_starts) if limit >= size else max(fit, start)
            else:
                stop = start - 1 + max(1, count)
            end = entry.line_starts[stop] if stop < len(entry.line_starts) else size
            last_line = entry.line_of(max(begin, end - 1))
            where = f"lines {start}-{last_line} of {total}"
            more = f'read_fd(fd="{fd}", mode="lines", start={last_line + 1})' if end < size else None
        else:
            if not 0 <= start < max(size, 1):
                raise ToolError(f"{fd} has characters 0 to {size - 1}; offset {start} does not exist")
            begin = start
            end = min(size, begin + (count or self.config.default_page_size))
            where = f"characters {begin}-{end - 1} of {size}"
            more = f'read_fd(fd="{fd}", mode="chars", start={end})' if end < size else None
        chunk = text[begin:end]
        footer = f"[{fd}: more with {more}]" if more else f"[{fd}: end]"
        return (
            f"[{fd} ({entry.source}): {where}]\n{chunk}{'' if chunk.endswith(chr(10)) else chr(10)}{footer}"
        )

    def capture_references(self, text: str) -> list[str]:
        """Store every `<ref id="NAME">…</ref>` in `text` as ref:NAME; returns the names."""
        names = []
        for match in _REFERENCE.finditer(text):
            names.append(
                self.store(match.group(2).strip("\n"), source="a reference", name=f"ref:{match.group(1)}")
            )
        return names


REFERENCE_INSTRUCTIONS = (
    'To keep a piece of your output for later use, wrap it as <ref id="NAME">…</ref>: it is stored '
    "as descriptor ref:NAME, which read_fd, fd_to_file and spawn (fds) accept."
)


def fd_tools(
    table_of: Callable[[], FileDescriptors], roots: FileRoots | None, names: set[str]
) -> list[Callable[..., Any]]:
    """read_fd (and fd_to_file when chosen and file roots exist) bound to the process's table."""

    @tool(access="read")
    def read_fd(
        fd: str, mode: Literal["page", "lines", "chars"] = "page", start: int = 1, count: int | None = None
    ) -> str:
        """Read a file descriptor (fd:N or ref:NAME): long tool results and inputs are stored as these.

        Args:
            fd: The descriptor, for example "fd:1".
            mode: "page" (start is a page number), "lines" (start is a line number, from 1) or
                "chars" (start is a character offset, from 0).
            start: Where to start, in the unit of `mode`.
            count: How many pages, lines or characters; default one page's worth.
        """
        return table_of().read(fd, mode=mode, start=start, count=count)

    @tool(access="write")
    def fd_to_file(fd: str, path: str, mode: Literal["write", "append"] = "write") -> str:
        """Write the whole content of a file descriptor to a file.

        Args:
            fd: The descriptor, for example "fd:1".
            path: The file to write, inside the allowed folders.
            mode: "write" replaces the file, "append" adds to its end.
        """
        assert roots is not None
        text = table_of().text(fd)
        target = roots.resolve(path)
        if target.is_dir():
            raise ToolError(f"'{path}' is a folder")
        if not target.parent.is_dir():
            raise ToolError(f"folder of '{path}' does not exist")
        with target.open("a" if mode == "append" else "w", encoding="utf-8") as file:
            file.write(text)
        return f"wrote {len(text):,} characters of {fd} to {path}"

    chosen: list[Callable[..., Any]] = [read_fd]
    if "fd_to_file" in names and roots is not None:
        chosen.append(fd_to_file)
    return chosen
