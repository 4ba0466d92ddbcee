"""Programs as MCP prompts, which hosts offer as slash commands: one per published program
(its `[prompt] user` as the message unless the user gives one), one per `[demo] prompts` entry,
and `spawn` (a program by name, completed as the user types). A prompt is a message to the
host's model asking it to call the program's run tool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    GetPromptRequestParams,
    GetPromptResult,
    ListPromptsResult,
    PaginatedRequestParams,
    Prompt,
    PromptArgument,
    PromptMessage,
    PromptReference,
    TextContent,
)

from ..errors import RequestError
from .catalog import Catalog, PublishedProgram

SPAWN_PROMPT = "spawn"
COMPLETIONS = 100
"""Values in one completion answer (the protocol's most)."""

ResourceValues = Callable[[ServerRequestContext[Any, Any], str, str, str], Awaitable[list[str]]]
"""Completion of a resource template's argument: (ctx, uri template, argument, typed so far)."""


class Prompts:
    def __init__(
        self,
        catalog: Callable[[], Catalog],
        published: Callable[[str], PublishedProgram],
        resource_values: ResourceValues,
    ) -> None:
        """`published`: a program by name, or an error naming the close matches (the directory's)."""
        self._catalog = catalog
        self._published = published
        self._resource_values = resource_values

    # -- handlers ----------------------------------------------------------------------------

    async def list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListPromptsResult:
        return ListPromptsResult(prompts=list(self._prompts().values()))

    async def get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: GetPromptRequestParams
    ) -> GetPromptResult:
        arguments = params.arguments or {}
        if params.name == SPAWN_PROMPT:
            try:
                published = self._published(str(arguments.get("program") or "").strip())
            except RequestError as err:
                raise MCPError(INVALID_PARAMS, str(err)) from None
            message = _message(arguments) or _first_message(published)
            if message is None:
                raise MCPError(INVALID_PARAMS, f"prompt spawn needs a 'message' for program {published.name}")
            return _asking(
                f"Start a new process of {published.name}",
                f'Call the tool `spawn` with program "{published.name}" and this message, then show '
                f"me the answer:\n\n{message}",
            )
        found = self._find(params.name)
        if found is None:
            raise MCPError(INVALID_PARAMS, f"unknown prompt '{params.name}'; list the prompts to see them")
        published, demo = found
        if demo is not None:
            message = demo
        else:
            message = _message(arguments) or _first_message(published)
            if message is None:
                raise MCPError(INVALID_PARAMS, f"prompt {params.name} needs a 'message'")
        return _asking(
            f"Ask the program {published.name}",
            f"Call the tool `{published.tool_name}` with this message, then show me the answer:\n\n{message}",
        )

    async def complete(
        self, ctx: ServerRequestContext[Any, Any], params: CompleteRequestParams
    ) -> CompleteResult:
        typed = params.argument.value
        if isinstance(params.ref, PromptReference):
            if params.ref.name == SPAWN_PROMPT and params.argument.name == "program":
                values = [n for n in sorted(self._catalog().programs) if n.startswith(typed)]
            else:
                values = []
        else:
            values = await self._resource_values(ctx, params.ref.uri, params.argument.name, typed)
        shown = values[:COMPLETIONS]
        return CompleteResult(
            completion=Completion(values=shown, total=len(values), has_more=len(values) > len(shown))
        )

    # -- what is offered -----------------------------------------------------------------------

    def _prompts(self) -> dict[str, Prompt]:
        programs = self._catalog().programs
        prompts: dict[str, Prompt] = {}
        for published in sorted(programs.values(), key=lambda p: p.name):
            first = _first_message(published)
            prompts[published.name] = Prompt(
                name=published.name,
                title=published.program.config.server.title or f"Ask {published.program.display_name}",
                description=published.program.config.server.description
                or f"Ask the llmproc program '{published.name}' (tool {published.tool_name}).",
                arguments=[
                    PromptArgument(
                        name="message",
                        description="What to ask" + (f" (default: {_short(first)})" if first else ""),
                        required=first is None,
                    )
                ],
            )
            for number, demo in enumerate(published.program.config.demo.prompts, start=1):
                prompts[f"{published.name}-demo-{number}"] = Prompt(
                    name=f"{published.name}-demo-{number}",
                    title=f"{published.program.display_name}: {_short(demo, 60)}",
                    description=f"Demo prompt {number} of {published.name}: {_short(demo)}",
                )
        if programs:
            prompts[SPAWN_PROMPT] = Prompt(
                name=SPAWN_PROMPT,
                title="Start a new process",
                description="Start a separate process of a program, with a first message.",
                arguments=[
                    PromptArgument(name="program", description="The program's name", required=True),
                    PromptArgument(name="message", description="The first message", required=False),
                ],
            )
        return prompts

    def _find(self, name: str) -> tuple[PublishedProgram, str | None] | None:
        programs = self._catalog().programs
        if name in programs:
            return programs[name], None
        base, _, number = name.rpartition("-demo-")
        published = programs.get(base)
        if published is None or not number.isdigit():
            return None
        demos = published.program.config.demo.prompts
        index = int(number) - 1
        return (published, demos[index]) if 0 <= index < len(demos) else None


def _message(arguments: dict[str, Any]) -> str | None:
    given = arguments.get("message")
    return given.strip() if isinstance(given, str) and given.strip() else None


def _first_message(published: PublishedProgram) -> str | None:
    user = published.program.config.prompt.user
    return user.strip() if user and user.strip() else None


def _short(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _asking(description: str, text: str) -> GetPromptResult:
    return GetPromptResult(
        description=description,
        messages=[PromptMessage(role="user", content=TextContent(type="text", text=text))],
    )
