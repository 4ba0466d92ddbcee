"""Process state as a versioned JSON document: snapshot, read back, save and load.

A snapshot holds what a process needs to continue: its messages (with the provider-specific
parts that must round-trip, such as thinking signatures and reasoning items), usage and cost
totals, file descriptors, and a reference to its program (path and content hash). Messages
keep their ids, so goto works across a restore. The same message encoding is what the
server's store appends turn by turn (`message_to_json`). This module knows no process: it
writes what a `Snapshottable` shows and reads a document back into a plain `SavedState`, from
which `LLMProcess.restore` builds the process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import SnapshotError
from .messages import (
    Block,
    ImageBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    reserve_message_ids,
)
from .program import LLMProgram
from .providers import family
from .result import ChildRecord, Usage
from .tools.fd import FileDescriptors

log = logging.getLogger("llmproc")

FORMAT = "llmproc-snapshot"
VERSION = 1


class Snapshottable(Protocol):
    """What a snapshot is taken of (a process)."""

    @property
    def id(self) -> str: ...

    @property
    def parent_id(self) -> str | None: ...

    @property
    def program(self) -> LLMProgram: ...

    @property
    def usage(self) -> Usage: ...

    @property
    def cost_usd(self) -> float | None: ...

    @property
    def fds(self) -> FileDescriptors | None: ...

    @property
    def messages(self) -> Sequence[Message]: ...

    @property
    def child_records(self) -> Sequence[ChildRecord]: ...

    def children(self) -> list[str]:
        """The ids of its live child processes."""
        ...


@dataclass
class SavedState:
    """A snapshot read back: what a process continues from (`LLMProcess.restore` builds it)."""

    program: LLMProgram
    process_id: str | None
    parent_id: str | None
    messages: list[Message]
    usage: Usage
    cost_usd: float | None
    descriptors: dict[str, dict[str, str]]
    fd_next: int | None
    program_changed: bool
    """The program file changed since the snapshot was taken."""
    children: tuple[ChildRecord, ...] = ()
    """Records of the child processes its runs started."""


# -- messages ----------------------------------------------------------------------------------


def _block_to_json(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolCallBlock):
        return {"type": "tool_call", "id": block.id, "name": block.name, "arguments": block.arguments}
    if isinstance(block, ToolResultBlock):
        return {
            "type": "tool_result",
            "tool_call_id": block.tool_call_id,
            "name": block.name,
            "is_error": block.is_error,
            "content": [_block_to_json(b) for b in block.content],
        }
    if isinstance(block, ThinkingBlock):
        data: dict[str, Any] = {"type": "thinking", "thinking": block.thinking}
        if block.signature is not None:
            data["signature"] = block.signature
        if block.redacted:
            data["redacted"] = True
        if block.provider is not None:
            data["provider"] = block.provider
        return data
    return {"type": "image", "data": block.data, "media_type": block.media_type}


def _block_from_json(data: dict[str, Any]) -> Block:
    kind = data.get("type")
    if kind == "text":
        return TextBlock(data["text"])
    if kind == "tool_call":
        return ToolCallBlock(data["id"], data["name"], dict(data.get("arguments") or {}))
    if kind == "tool_result":
        content = tuple(_block_from_json(b) for b in data.get("content", ()))
        parts = tuple(b for b in content if isinstance(b, TextBlock | ImageBlock))
        return ToolResultBlock(data["tool_call_id"], parts, bool(data.get("is_error")), data.get("name", ""))
    if kind == "thinking":
        return ThinkingBlock(
            data.get("thinking", ""), data.get("signature"), bool(data.get("redacted")), data.get("provider")
        )
    if kind == "image":
        return ImageBlock(data["data"], data["media_type"])
    raise SnapshotError(f"unknown block type {kind!r} in a snapshot message")


def message_to_json(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": message.id,
        "role": message.role,
        "content": [_block_to_json(b) for b in message.content],
    }
    if message.provider_data is not None:
        data["provider_data"] = message.provider_data
    return data


def message_from_json(data: dict[str, Any]) -> Message:
    try:
        blocks = tuple(_block_from_json(b) for b in data["content"])
        if data["role"] not in ("user", "assistant"):
            raise SnapshotError(f"unknown role {data['role']!r} in a snapshot message")
        return Message(data["role"], blocks, id=data["id"], provider_data=data.get("provider_data"))
    except (KeyError, TypeError) as err:
        raise SnapshotError(f"a snapshot message is malformed (missing or wrong {err})") from None


def _converted(message: Message, provider: str) -> Message:
    """The message as another provider can take it: its own thinking and replay data dropped."""
    own = family(provider)
    blocks = tuple(b for b in message.content if not (isinstance(b, ThinkingBlock) and b.provider != own))
    return Message(message.role, blocks, id=message.id)


# -- programs ----------------------------------------------------------------------------------


def program_reference(program: LLMProgram) -> dict[str, Any]:
    """Which program a snapshot belongs to: its file and a hash of the file's text."""
    model = program.config.model
    reference: dict[str, Any] = {"provider": model.provider, "model": model.name}
    if program.path is not None:
        reference["path"] = str(program.path)
        reference["sha256"] = program.source_hash
    return reference


# -- documents ---------------------------------------------------------------------------------


def header(process: Snapshottable) -> dict[str, Any]:
    """Everything in a snapshot except the messages and descriptor texts: small, rewritten per turn."""
    fds = process.fds
    return {
        "format": FORMAT,
        "version": VERSION,
        "process_id": process.id,
        "parent_id": process.parent_id,
        "program": program_reference(process.program),
        "usage": process.usage.to_dict(),
        "cost_usd": process.cost_usd,
        "fd_next": fds.next_number if fds is not None else None,
        "child_runs": [c.to_dict() for c in process.child_records],
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def descriptors_to_json(process: Snapshottable, names: list[str] | None = None) -> dict[str, dict[str, str]]:
    if process.fds is None:
        return {}
    return {
        name: {"text": process.fds.text(name), "source": process.fds.source(name)}
        for name in (process.fds.names() if names is None else names)
    }


def snapshot(process: Snapshottable) -> dict[str, Any]:
    return {
        **header(process),
        "children": process.children(),
        "messages": [message_to_json(m) for m in process.messages],
        "file_descriptors": descriptors_to_json(process),
    }


def check_document(document: Any) -> dict[str, Any]:
    """The document if this llmproc can restore it, else a SnapshotError saying why."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError("not an llmproc snapshot (its 'format' is not 'llmproc-snapshot')")
    version = document.get("version")
    if not isinstance(version, int) or version < 1:
        raise SnapshotError(f"snapshot has an invalid format version {version!r}")
    if version > VERSION:
        raise SnapshotError(
            f"snapshot format version {version} is newer than this llmproc reads (up to {VERSION}); "
            "upgrade llmproc to restore it"
        )
    return document


def read(
    document: Any,
    program: LLMProgram | None = None,
    *,
    convert: bool = False,
    known: Sequence[Message] = (),
) -> SavedState:
    """What a process continuing from `document` starts with (see `LLMProcess.restore`).
    `known`: messages the caller has already, which the document's `messages` continue (a
    copy brought up to date reads only what it lacks)."""
    document = check_document(document)
    reference = document.get("program") or {}
    if program is None:
        path = reference.get("path")
        if not path:
            raise SnapshotError(
                "the snapshot's program was built in Python (no file); pass it: restore(snapshot, program)"
            )
        if not Path(path).is_file():
            raise SnapshotError(f"the snapshot's program file {path} is gone; pass the program to use")
        program = LLMProgram.from_toml(path)
    saved, now = reference.get("provider"), program.config.model.provider
    if saved and family(saved) != family(now) and not convert:
        raise SnapshotError(
            f"this snapshot was made with provider '{saved}' and the program uses '{now}'; "
            "its messages carry provider-specific parts. Pass convert=True to restore it anyway "
            "(thinking and replay data of the old provider are dropped)"
        )
    saved_hash, current = reference.get("sha256"), program.source_hash
    changed = bool(saved_hash and current and saved_hash != current)
    if changed:
        log.warning(
            "program %s changed since the snapshot of process %s was taken; continuing with the new version",
            program.path,
            document.get("process_id"),
        )
    messages = [message_from_json(m) for m in document.get("messages", [])]
    if saved and family(saved) != family(now):
        messages = [_converted(m, now) for m in messages]
    reserve_message_ids(m.id for m in messages)
    messages = [*known, *messages]
    usage = document.get("usage") or {}
    cost = document.get("cost_usd", 0.0)
    return SavedState(
        program=program,
        process_id=document.get("process_id"),
        parent_id=document.get("parent_id"),
        messages=messages,
        usage=Usage(**{k: int(v) for k, v in usage.items() if k in Usage.__slots__}),
        cost_usd=float(cost) if cost is not None else None,
        descriptors=document.get("file_descriptors") or {},
        fd_next=int(document["fd_next"]) if document.get("fd_next") else None,
        program_changed=changed,
        children=_child_records(document.get("child_runs")),
    )


def _child_records(data: Any) -> tuple[ChildRecord, ...]:
    """The children recorded in a document; an older document has none."""
    return tuple(ChildRecord.from_dict(c) for c in data or () if isinstance(c, dict))


def save(process: Snapshottable, path: str | Path) -> Path:
    """Write the snapshot atomically: a crash mid-write leaves the previous file intact."""
    target = Path(path)
    text = json.dumps(snapshot(process), ensure_ascii=False, separators=(",", ":"))
    directory = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target


def load_document(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SnapshotError(f"snapshot file {path} not found") from None
    except OSError as err:
        raise SnapshotError(f"can not read snapshot {path}: {err.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise SnapshotError(f"{path} is not a snapshot: invalid JSON at line {err.lineno}") from None
    try:
        return check_document(document)
    except SnapshotError as err:
        raise SnapshotError(f"{path}: {err}") from None
