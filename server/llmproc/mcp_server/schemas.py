"""What llmproc-mcp's tools look like to a client: their names, descriptions, argument and
output schemas, and the results they return. No behaviour lives here.

Every run_<name> tool has the same arguments and output, so their schemas are built once
and shared: start-up stays fast with a thousand programs. They also leave out the `title`
pydantic gives each property: a thousand programs would send a thousand copies of it in
tools/list, and hosts put tools/list into their model's context.
"""

from __future__ import annotations

import functools
from typing import Any

from mcp_types import CallToolResult, Icon, ResourceLink, Tool, ToolAnnotations, ToolExecution
from pydantic import BaseModel, ConfigDict, Field, create_model

from ..result import RunResult
from .tool_server import text_result

INSTRUCTIONS = (
    "Each run_<program> tool sends a message to an LLM process running that program and returns "
    "its reply. Processes keep their conversation: call again to continue it, or pass the "
    "process_id from an earlier result. spawn starts a separate process, fork copies one, reset "
    "clears one, list_processes shows yours."
)


class RunOutput(BaseModel):
    """What a run returns besides the reply text."""

    process_id: str = Field(description="Pass it back as process_id to continue this conversation.")
    program: str
    text: str = Field(description="The reply.")
    usage: dict[str, int] = Field(description="Tokens of this run: input, output, cache and reasoning.")
    cost_usd: float | None = Field(description="Cost of this run in USD; null when the price is unknown.")
    tool_calls: list[dict[str, Any]] = Field(description="Tools the process called during the run.")


class ProcessInfo(BaseModel):
    process_id: str
    program: str
    turns: int
    messages: int
    cost_usd: float | None
    created: str
    last_activity: str
    parent_id: str | None


class ProcessList(BaseModel):
    processes: list[ProcessInfo]
    programs: list[str] = Field(description="Programs this server publishes.")
    unavailable_programs: dict[str, str] = Field(description="Program files left out, with the reason.")


class ForkOutput(BaseModel):
    process_id: str
    program: str
    parent_id: str


def _arguments(name: str, **fields: Any) -> type[BaseModel]:
    """The argument model of a tool, named as the client sees it in the schema's title."""
    model: type[BaseModel] = create_model(f"{name}Arguments", __config__=ConfigDict(extra="ignore"), **fields)
    return model


_PROCESS_ID = "Continue this process (from an earlier result)."

RunArguments = _arguments(
    "run",
    message=(str, Field(description="What to say to the program.")),
    process_id=(str | None, Field(default=None, description=_PROCESS_ID)),
)
SpawnArguments = _arguments(
    "spawn",
    program=(str, Field(description="Name of a published program (run_<name> without run_).")),
    message=(str | None, Field(default=None, description="A first message to run at once.")),
)
ResetArguments = _arguments(
    "reset",
    process_id=(str | None, Field(default=None, description="The process to clear.")),
    program=(str | None, Field(default=None, description="Clear your conversation with this program.")),
)
ForkArguments = _arguments("fork", process_id=(str, Field(description="The process to copy.")))
ListArguments = _arguments("list_processes")

_TALKS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)

TASKS_OPTIONAL = ToolExecution(task_support="optional")
"""Runs may be called as tasks (MCP 2025-11-25): collected later, never timed out."""

SPAWN = Tool(
    name="spawn",
    description=(
        "Start a new, separate process of a published program and return its process_id; with a "
        "message, also run it and return the reply. Use run_<program> with that process_id to continue."
    ),
    input_schema=SpawnArguments.model_json_schema(),
    output_schema=RunOutput.model_json_schema(),
    annotations=_TALKS,
    execution=TASKS_OPTIONAL,
)
RESET = Tool(
    name="reset",
    description=(
        "Clear a conversation: the process with process_id, your conversation with a program, or, "
        "with neither, all your processes."
    ),
    input_schema=ResetArguments.model_json_schema(),
    output_schema=create_model("resetOutput", result=(str, ...)).model_json_schema(),
)
FORK = Tool(
    name="fork",
    description=(
        "Copy a process with its whole conversation; the copy gets its own process_id and diverges "
        "from there."
    ),
    input_schema=ForkArguments.model_json_schema(),
    output_schema=ForkOutput.model_json_schema(),
)
LIST = Tool(
    name="list_processes",
    description=(
        "List your processes (program, turns, cost, last activity) and the programs this server publishes."
    ),
    input_schema=ListArguments.model_json_schema(),
    output_schema=ProcessList.model_json_schema(),
    annotations=ToolAnnotations(read_only_hint=True),
)


def run_tool(
    name: str, description: str, title: str | None = None, icon: tuple[str, str | None] | None = None
) -> Tool:
    """The run_<name> tool of one program: a copy of one template, not validated again (a
    thousand programs are published on each reload). `icon`: its src and media type."""
    update: dict[str, Any] = {"name": name, "description": description}
    if title:
        update["title"] = title
    if icon is not None:
        update["icons"] = [Icon(src=icon[0], mime_type=icon[1])]
    return _run_template().model_copy(update=update)


@functools.cache
def _run_template() -> Tool:
    return Tool(
        name="run",
        description="",
        input_schema=_untitled(RunArguments.model_json_schema()),
        output_schema=_untitled(RunOutput.model_json_schema()),
        annotations=_TALKS,
        execution=TASKS_OPTIONAL,
    )


def _untitled(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _untitled(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema


PROCESSES_URI = "llmproc://processes"
"""The caller's processes as a resource; each one's transcript is under it (resources.py)."""


def transcript_uri(process_id: str) -> str:
    return f"{PROCESSES_URI}/{process_id}"


def transcript_link(process_id: str, program: str) -> ResourceLink:
    """What a run result points to: the conversation it continued, to read whole."""
    return ResourceLink(
        type="resource_link",
        uri=transcript_uri(process_id),
        name=f"{program} conversation {process_id}",
        mime_type="text/markdown",
    )


def run_result(process_id: str, program: str, result: RunResult | None) -> CallToolResult:
    """A run's answer (or, without a result, a started process's), structured and as text."""
    text = result.text if result else ""
    output = RunOutput(
        process_id=process_id,
        program=program,
        text=text,
        usage=result.usage.to_dict() if result else {},
        cost_usd=result.cost_usd if result else 0.0,
        tool_calls=[c.to_dict() for c in result.tool_calls] if result else [],
    )
    # the text names the process too: some hosts (Gemini CLI) show their model only the text,
    # and without the id it could never continue, fork or reset this process
    shown = (
        f"{text}\n\n[process_id: {process_id}]"
        if result
        else f"started process {process_id} of program '{program}'"
    )
    answer = text_result(shown, output.model_dump(mode="json"))
    answer.content.append(transcript_link(process_id, program))  # the whole conversation, to read
    return answer
