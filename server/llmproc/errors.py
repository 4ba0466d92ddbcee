"""The exceptions llmproc raises, each written for the person who must fix something.

    LLMProcError
    ├── ProgramError        a program (TOML, dict or Python) is invalid; names file, key, line, fix
    ├── ProviderError       the model provider failed (status, message, provider); history untouched
    │   └── MissingAPIKeyError   no credentials; names the environment variable to set
    ├── ToolError           raised by a tool to send a clean message back to the model
    ├── McpServerError      an MCP server failed to start; names the server and its command
    ├── ProcessError        the process can not do what was asked (closed, busy, limits)
    ├── SnapshotError       a snapshot can not be read or restored (format, version, provider)
    ├── StoreError          the state database can not be used (not one, another's, too new, held)
    └── CatalogError        a programs directory can not be published (missing, a name collision)

Tool failures go back to the model as error results; only control flow raises.
"""

from __future__ import annotations


class LLMProcError(Exception):
    """Base of every exception llmproc raises on purpose."""


class ProgramError(LLMProcError):
    """A program is invalid. `str(err)` is one line per problem, ready to print."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class ProviderError(LLMProcError):
    """A provider request failed after the retries that made sense.

    `status` is the HTTP status when there was one; `kind` the provider's error type
    (for example ``rate_limit_error``); `retryable` whether trying again later may help.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        kind: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.kind = kind
        self.retryable = retryable


class MissingAPIKeyError(ProviderError):
    """No credentials were found for a provider when the process first needed them."""


class ToolError(LLMProcError):
    """Raise inside a tool to return this message to the model as an error result."""


class McpServerError(LLMProcError):
    """An MCP server could not be started or listed; the run that needed it did not start."""


class ProcessError(LLMProcError):
    """The process refused an operation (for example a run on a closed process)."""


class SnapshotError(LLMProcError):
    """A snapshot can not be read or restored: wrong format, newer version, another provider."""


class StoreError(LLMProcError):
    """The state database can not be used: not a database, another application's, too new, or
    held by another server."""


class CatalogError(LLMProcError):
    """The directory can not be published (missing, or two programs with one tool name)."""
