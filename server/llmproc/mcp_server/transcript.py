"""A conversation as markdown a person reads in a host: what was asked, what the agent said,
the tools it called with their arguments and a short look at each result.

Long tool results are cut (the messages resource has them whole); thinking shows as a quoted
summary, redacted thinking as a note that there was some. Text that looks like markdown
headings or fences stays inside its own section: user and model text can not end a section.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..messages import ImageBlock, Message, TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock
from ..result import ChildRecord

RESULT_CHARS = 600
"""Characters of a tool result shown; the rest is counted, not shown."""
THINKING_CHARS = 400
ARGUMENT_CHARS = 2000


def render(process: dict[str, Any], messages: Sequence[Message], children: Sequence[ChildRecord] = ()) -> str:
    """`process` as list_processes describes it; `messages` its history; `children` the child
    processes its runs started, shown under the tool call that started each, with its cost."""
    started: dict[str, list[ChildRecord]] = {}
    for child in children:
        started.setdefault(child.tool_call_id, []).append(child)
    cost = process.get("cost_usd")
    lines = [
        f"# {process['program']}: conversation {process['process_id']}",
        "",
        f"{_count(int(process.get('turns') or 0), 'turn')}, {_count(len(messages), 'message')}, "
        + (f"${cost:.4f}" if isinstance(cost, (int, float)) else "cost unknown")
        + (f"; forked from {process['parent_id']}" if process.get("parent_id") else ""),
    ]
    for message in messages:
        if lines[-1]:
            lines.append("")
        lines += [_heading(message), ""]
        for block in message.content:
            lines += _block(block)
            if isinstance(block, ToolCallBlock) and block.id in started:
                lines += [*(_child_line(c) for c in started[block.id]), ""]
    return "\n".join(lines).rstrip() + "\n"


def _child_line(child: ChildRecord, depth: int = 0) -> str:
    cost = f"${child.cost_usd:.4f}" if child.cost_usd is not None else "cost unknown"
    tokens = child.usage.total_input_tokens + child.usage.output_tokens
    who = f"{child.kind} `{child.program}` (process {child.process_id})"
    line = f"{'  ' * depth}- {who}: {cost}, {tokens:,} tokens"
    return "\n".join([line, *(_child_line(c, depth + 1) for c in child.children)])


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _heading(message: Message) -> str:
    if message.role == "user" and all(isinstance(b, ToolResultBlock) for b in message.content):
        return "## Tool results"
    return "## User" if message.role == "user" else "## Assistant"


def _block(block: Any) -> list[str]:
    if isinstance(block, TextBlock):
        return [_fenced_if_needed(block.text), ""]
    if isinstance(block, ThinkingBlock):
        if block.redacted or not block.thinking.strip():
            return ["> *(thinking, not shown by the provider)*", ""]
        return [*(f"> {line}" for line in _cut(block.thinking, THINKING_CHARS).splitlines()), ""]
    if isinstance(block, ToolCallBlock):
        arguments = _cut(json.dumps(block.arguments, ensure_ascii=False, indent=2), ARGUMENT_CHARS)
        return [f"**Tool call** `{block.name}`", "", _fence(arguments, "json"), ""]
    if isinstance(block, ToolResultBlock):
        label = "**Tool error**" if block.is_error else "**Tool result**"
        name = f" `{block.name}`" if block.name else ""
        images = sum(isinstance(c, ImageBlock) for c in block.content)
        shown = [f"{label}{name}", "", _fence(_cut(block.text, RESULT_CHARS), "")]
        if images:
            shown += ["", f"*({images} image{'s' if images > 1 else ''})*"]
        return [*shown, ""]
    if isinstance(block, ImageBlock):
        return [f"*(an image, {block.media_type})*", ""]
    return []


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def _fence(text: str, language: str) -> str:
    """A code fence longer than any run of backticks in `text`, so nothing can close it early."""
    ticks, run = 3, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        ticks = max(ticks, run + 1)
    fence = "`" * ticks
    return f"{fence}{language}\n{text}\n{fence}"


def _fenced_if_needed(text: str) -> str:
    """Plain text as it is, unless a line would start a heading or a fence of the transcript's
    own structure: then the whole text goes in a fence."""
    if any(line.lstrip().startswith(("#", "```", "~~~")) for line in text.splitlines()):
        return _fence(text, "text")
    return text
