"""llmproc: LLM agents as processes. A TOML file is the program; llmproc is the kernel.

process = LLMProcess.from_toml("programs/minimal.toml")
result = await process.run("Hello!")     # or process.run(...) from sync code
print(result)                            # the reply text; result.usage, result.cost_usd, ...
"""

from .errors import (
    LLMProcError,
    McpServerError,
    MissingAPIKeyError,
    ProcessError,
    ProgramError,
    ProviderError,
    SnapshotError,
    ToolError,
)
from .events import RunEvent, TextDelta, ToolCallFinished, ToolCallStarted, TurnFinished, Watch
from .messages import Message
from .process import LLMProcess
from .program import LLMProgram
from .result import RunResult, ToolCallRecord, Usage
from .tools.functions import tool
from .version import __version__

__all__ = [
    "LLMProcError",
    "LLMProcess",
    "LLMProgram",
    "McpServerError",
    "Message",
    "MissingAPIKeyError",
    "ProcessError",
    "ProgramError",
    "ProviderError",
    "RunEvent",
    "RunResult",
    "SnapshotError",
    "TextDelta",
    "ToolCallFinished",
    "ToolCallRecord",
    "ToolCallStarted",
    "ToolError",
    "TurnFinished",
    "Usage",
    "Watch",
    "__version__",
    "tool",
]
