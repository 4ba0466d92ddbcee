"""Reading `llmproc-mcp` tool results the way a host's model does: from the text."""

from __future__ import annotations

from typing import Any


def text(result: Any) -> str:
    """The reply of a tool result. A run result's text must also name its process_id (some
    hosts show their model only the text), so this checks that it does and returns the rest."""
    shown = result.content[0].text
    process_id = (result.structured_content or {}).get("process_id")
    if process_id is None or "text" not in (result.structured_content or {}) or result.is_error:
        return shown
    trailer = f"\n\n[process_id: {process_id}]"
    assert shown.endswith(trailer), f"the text does not name process {process_id}: {shown!r}"
    return shown[: -len(trailer)]
