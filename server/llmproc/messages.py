"""Provider-neutral, immutable conversation messages.

Every provider module converts to and from these types and nothing else, so the
process loop never sees an SDK object. Blocks are frozen: a forked process shares
them with its parent safely. Provider-specific payloads that must round-trip
(thinking signatures, reasoning items) travel in `ThinkingBlock.signature` and
`provider_data`, which only the provider that produced them reads.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ProcessError

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class TextBlock:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImageBlock:
    """An image given inline as base64 data."""

    data: str
    media_type: str
    type: Literal["image"] = "image"


@dataclass(frozen=True, slots=True)
class ThinkingBlock:
    """Model reasoning. `signature` and `redacted` must be echoed back unchanged."""

    thinking: str
    signature: str | None = None
    redacted: bool = False
    provider: str | None = None
    type: Literal["thinking"] = "thinking"


@dataclass(frozen=True, slots=True)
class ToolCallBlock:
    """A model's request to call one tool. `arguments` is the decoded JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]
    type: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class ToolResultBlock:
    """The outcome of one tool call, as the model will see it."""

    tool_call_id: str
    content: tuple[TextBlock | ImageBlock, ...]
    is_error: bool = False
    name: str = ""
    type: Literal["tool_result"] = "tool_result"

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.content if isinstance(b, TextBlock))


Block = TextBlock | ImageBlock | ThinkingBlock | ToolCallBlock | ToolResultBlock

_ids = itertools.count(1)


def new_message_id() -> str:
    """A fresh id, unique in this interpreter: msg-1, msg-2, … (short, because models see them)."""
    return f"msg-{next(_ids)}"


def reserve_message_ids(ids: Iterable[str]) -> None:
    """Make new ids start after `ids` (restored messages), so they never repeat in one history."""
    global _ids
    highest = max((int(i[4:]) for i in ids if i.startswith("msg-") and i[4:].isdigit()), default=0)
    following = next(_ids)
    _ids = itertools.count(max(following, highest + 1))


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation turn. `id` is stable for the life of the message (goto uses it)."""

    role: Role
    content: tuple[Block, ...]
    id: str = field(default_factory=new_message_id)
    provider_data: Any = None

    @classmethod
    def user(cls, text: str, *, show_id: bool = False) -> Message:
        """A user message; with `show_id` its id is shown to the model as a [msg-N] prefix (goto)."""
        if not show_id:
            return cls("user", (TextBlock(text),))
        message_id = new_message_id()
        return cls("user", (TextBlock(f"[{message_id}] {text}"),), id=message_id)

    @property
    def text(self) -> str:
        """The visible text of this message, blocks joined without separators."""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_calls(self) -> list[ToolCallBlock]:
        return [b for b in self.content if isinstance(b, ToolCallBlock)]


def tool_arguments_from_json(raw: str | None) -> dict[str, Any]:
    """Decode tool-call arguments sent as a JSON string, tolerating empty strings."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw_arguments": raw}
    return value if isinstance(value, dict) else {"value": value}


def check_unicode(message: str) -> None:
    """Refuse text that is not Unicode (a lone surrogate, which JSON can carry): no provider
    API can be sent it and no store can keep it, so it must fail before anything is sent."""
    try:
        message.encode("utf-8")
    except UnicodeEncodeError as err:
        code = ord(message[err.start])
        raise ProcessError(
            f"the message is not valid Unicode text: it holds a lone surrogate (U+{code:04X}) at "
            f"character {err.start}; send text with each surrogate paired, or without them"
        ) from None
