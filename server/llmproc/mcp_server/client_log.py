"""Log records of a run go to the client that asked for it, as MCP log messages.

A handler on the `llmproc` logger looks up the client of the run in progress (a context
variable the server sets around each run) and sends the record there; records outside a
run, and every record in any case, still go to stderr. Delivery is best effort: a client
that did not opt in to logging simply does not get them.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from contextvars import ContextVar

from .tool_server import ToolCall

current_call: ContextVar[ToolCall | None] = ContextVar("llmproc_log_call", default=None)
"""The tool call whose run is in progress (set by the server around each run)."""

_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}


class ClientLogHandler(logging.Handler):
    """Sends each record emitted during a run to that run's MCP client."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        call = current_call.get()
        if call is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        level = _LEVELS.get(record.levelno, "info")
        task = loop.create_task(_send(call, level, self.format(record), record.name))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


async def _send(call: ToolCall, level: str, text: str, logger: str) -> None:
    try:
        with warnings.catch_warnings():  # logging is deprecated in the 2026-07-28 protocol, not gone
            warnings.simplefilter("ignore")
            await call.session.send_log_message(
                level, text, logger=logger, related_request_id=call.request_id
            )
    except Exception:  # the client went away, or takes no log messages
        pass


def install() -> None:
    """Attach the handler to the `llmproc` logger once."""
    logger = logging.getLogger("llmproc")
    if not any(isinstance(h, ClientLogHandler) for h in logger.handlers):
        logger.addHandler(ClientLogHandler())
