"""The exceptions llmproc raises, each written for the person who must fix something.

    LLMProcError
    ├── ProgramError        a program (TOML, dict or Python) is invalid; names file, key, line, fix
    │   └── McpConfigError       the [mcp] / [tools.mcp] part of one; its key path, turned into a ProgramError
    ├── ProviderError       the model provider failed (status, message, provider); history untouched
    │   └── MissingAPIKeyError   no credentials; names the environment variable to set
    ├── ToolError           raised by a tool to send a clean message back to the model
    │   └── RequestError         llmproc-mcp's own tools refuse a client's call (whose process, which program)
    ├── McpServerError      an MCP server failed to start; names the server and its command
    ├── ProcessError        the process can not do what was asked (closed, busy, limits)
    ├── SnapshotError       a snapshot can not be read or restored (format, version, provider)
    ├── StoreError          the state database can not be used (not one, another's, too new, down)
    │   └── LeaseLost            another server took over a process while this one ran it (fencing)
    ├── CatalogError        a programs directory can not be published (missing, a name collision)
    └── ServeError          llmproc-mcp can not serve as asked (a transport it can not use)

Tool failures go back to the model as error results; only control flow raises. Calling the
API with a value of the wrong Python type raises TypeError, as Python's own functions do.
"""

from __future__ import annotations


class LLMProcError(Exception):
    """Base of every exception llmproc raises on purpose."""


class ProgramError(LLMProcError):
    """A program is invalid. `str(err)` is one line per problem, ready to print."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class McpConfigError(ProgramError):
    """A problem with the MCP part of a program; `loc` is the key path it concerns (the program
    loader adds the file and line)."""

    def __init__(self, message: str, loc: tuple[str, ...]) -> None:
        super().__init__(message)
        self.loc = loc


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
    not reachable."""


class LeaseLost(StoreError):
    """A commit was refused: another server took the process over (its lease, and so its fencing
    token, is newer) or changed it since this server loaded it. Nothing was written."""


class CatalogError(LLMProcError):
    """The directory can not be published (missing, or two programs with one tool name)."""


class RequestError(ToolError):
    """llmproc-mcp can not do what a client asked: an unknown or busy process, an unknown
    program, a state database that could not keep the result. The client sees the message."""


class ServeError(LLMProcError):
    """llmproc-mcp can not serve as asked: a transport it can not use in this environment."""
