"""Naming what is not a regular file, for errors that refuse to read one.

Opening a FIFO blocks until a writer comes, and a device such as /dev/zero never ends, so
program loading and file tools check a path's type before they open it.
"""

from __future__ import annotations

import stat

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """'a named pipe', 'a character device'...: what a non-regular file is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")
