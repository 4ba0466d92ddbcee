"""The programs a server publishes: found under a directory, named, described, loaded.

A program that fails to load does not stop the server: it is left out and its error is
kept, so the listing tool can show why. Two files whose tool names collide are a
start-up error that names both.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import CatalogError, ProgramError
from ..program import LLMProgram

log = logging.getLogger("llmproc.mcp_server")

TOOL_PREFIX = "run_"
NAME_LIMIT = 64
"""The longest tool name MCP hosts accept."""
HOST_PREFIX_ROOM = 20
"""Hosts prefix tool names with the server's name (`mcp__llmproc__`, `mcp_llmproc_`): leave
room for 20 characters of it, or the host cuts and mangles the name itself."""
TOOL_NAME_LIMIT = NAME_LIMIT - HOST_PREFIX_ROOM
_SUFFIX = 6


@dataclass(frozen=True)
class PublishedProgram:
    name: str
    """The tool name without its prefix: the path below the directory, without .toml."""
    path: Path
    program: LLMProgram
    description: str

    @property
    def tool_name(self) -> str:
        return TOOL_PREFIX + self.name


def program_name(root: Path, path: Path) -> str:
    """`sub/dir/x.toml` -> `sub_dir_x`: characters outside [A-Za-z0-9_-] become '_'.

    A name too long for TOOL_NAME_LIMIT keeps its start and ends in a short hash of the whole
    path, so it stays the same across restarts and two long paths rarely meet."""
    relative = path.relative_to(root).with_suffix("").as_posix()
    name = re.sub(r"[^A-Za-z0-9_-]", "_", relative)
    room = TOOL_NAME_LIMIT - len(TOOL_PREFIX)
    if len(name) <= room:
        return name
    digest = hashlib.sha256(relative.encode("utf-8", "surrogateescape")).hexdigest()[:_SUFFIX]
    return f"{name[: room - _SUFFIX - 1].rstrip('_-')}_{digest}"


def program_files(root: Path) -> list[Path]:
    """Every *.toml below `root`, sorted, leaving out hidden files and directories (.git, .venv,
    editor settings): a programs directory inside a project should not publish its tooling."""
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
        found += [Path(directory, f) for f in files if f.endswith(".toml") and not f.startswith(".")]
    return sorted(found)


def _summary(name: str, program: LLMProgram) -> str:
    model = program.config.model
    prompt = " ".join((program.config.prompt.system_prompt or "").split())
    first = re.split(r"(?<=[.!?])\s", prompt, maxsplit=1)[0] if prompt else ""
    if len(first) > 200:
        first = first[:199].rstrip() + "…"
    about = f" {first}" if first else ""
    return f"Ask the llmproc program '{name}' ({model.provider} {model.name}).{about}"


def _as_sentence(text: str) -> str:
    """End a description with punctuation so the usage note that follows reads as its own sentence."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?…" else text + "."


_HOW = (
    " Without process_id this continues your conversation with the program (a new one on first "
    "use); with process_id it continues that process. The result carries the process_id."
)


class Catalog:
    """Every *.toml under `root` (recursively) that loads and has [server] publish = true."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.programs: dict[str, PublishedProgram] = {}
        self.failures: dict[str, str] = {}

    @classmethod
    def load(cls, root: str | Path) -> Catalog:
        catalog = cls(Path(root).expanduser().resolve())
        catalog._scan()
        return catalog

    def signature(self) -> dict[str, tuple[str, str]]:
        """What clients see of the catalog: tool names with their descriptions and files."""
        return {p.tool_name: (p.description, p.path.read_text(encoding="utf-8", errors="replace"))
                for p in self.programs.values() if p.path.exists()}  # fmt: skip

    def files(self) -> dict[str, tuple[int, int]]:
        """Modification time and size of every program file, to notice edits cheaply."""
        stamps = {}
        for path in program_files(self.root):
            try:
                stat = path.stat()
            except OSError:
                continue
            stamps[str(path)] = (stat.st_mtime_ns, stat.st_size)
        return stamps

    def _scan(self) -> None:
        if not self.root.is_dir():
            raise CatalogError(
                f"programs directory '{self.root}' not found; give --programs the absolute path of a "
                "folder of .toml programs (`llmproc init DIR` writes one)"
            )
        paths: dict[str, Path] = {}
        loaded: dict[str, LLMProgram] = {}
        for path in program_files(self.root):
            name = program_name(self.root, path)
            if name in paths:
                raise CatalogError(
                    f"'{paths[name]}' and '{path}' would both be published as {TOOL_PREFIX}{name}; rename one"
                )
            paths[name] = path
            time.sleep(0)  # let the event loop run between programs when reloading in a thread
            try:
                loaded[name] = LLMProgram.from_toml(path)
            except ProgramError as err:
                self.failures[str(path.relative_to(self.root))] = str(err)
                log.warning("program left out: %s", err)  # the error names the file and line
        linked_descriptions = {
            target.resolve(): description
            for program in loaded.values()
            for target, description in program.linked_program_paths.values()
            if description
        }
        for name, program in loaded.items():
            if not program.config.server.publish:
                continue
            assert program.path is not None
            description = (
                program.config.server.description
                or linked_descriptions.get(program.path)
                or _summary(name, program)
            )
            self.programs[name] = PublishedProgram(
                name, program.path, program, _as_sentence(description) + _HOW
            )
