"""What a host can read: the caller's processes, each one's transcript and messages, and the
published programs, as MCP resources under `llmproc://`.

Resources are bound to their owner exactly like process ids: another caller's transcript is
"not found", the same answer as for an id that never existed. Subscribers hear when a turn of
a process completes (2025-11-25: `notifications/resources/updated` to the subscribed session;
2026-07-28: the same event on `subscriptions/listen`), and every caller hears that the list
changed when processes appear or go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.subscriptions import SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types import (
    INVALID_PARAMS,
    EmptyResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    SubscribeRequestParams,
    TextResourceContents,
    UnsubscribeRequestParams,
)

from ..errors import LLMProcError
from ..snapshot import message_to_json
from . import transcript
from .catalog import Catalog
from .directory import ProcessDirectory
from .handles import Handle, Owner
from .schemas import PROCESSES_URI, transcript_uri

_PROCESS = re.compile(r"llmproc://processes/(?P<pid>[A-Za-z0-9_-]{1,64})(?P<part>/messages\.json|/tree)?")
_PROGRAM = re.compile(r"llmproc://programs/(?P<name>[A-Za-z0-9_-]{1,200})")

LISTED_PROCESSES = 100
"""Processes listed as resources of their own (the most recently active); all are in PROCESSES_URI."""

TEMPLATES = [
    ResourceTemplate(
        uri_template="llmproc://processes/{process_id}",
        name="transcript",
        title="Conversation transcript",
        description="One of your processes as readable markdown: messages, tool calls and results.",
        mime_type="text/markdown",
    ),
    ResourceTemplate(
        uri_template="llmproc://processes/{process_id}/messages.json",
        name="messages",
        title="Conversation messages",
        description="One of your processes' messages in llmproc's neutral JSON form, whole.",
        mime_type="application/json",
    ),
    ResourceTemplate(
        uri_template="llmproc://processes/{process_id}/tree",
        name="tree",
        title="Process tree",
        description="The processes one of yours spawned, forked and copied, recursively, each with its cost.",
        mime_type="application/json",
    ),
    ResourceTemplate(
        uri_template="llmproc://programs/{name}",
        name="program",
        title="Published program",
        description="A published program's TOML, and the tool it is published as.",
        mime_type="text/plain",
    ),
]

OwnerOf = Callable[[ServerRequestContext[Any, Any]], Owner]
SessionKey = Callable[[ServerRequestContext[Any, Any]], str | None]


def _not_found(uri: str) -> MCPError:
    return MCPError(INVALID_PARAMS, f"Resource not found: {uri}")


class Resources:
    """The resource handlers of the server, and the notifications of what changed."""

    def __init__(
        self,
        directory: ProcessDirectory,
        catalog: Callable[[], Catalog],
        owner_of: OwnerOf,
        session_key: SessionKey,
        bus: SubscriptionBus,
    ) -> None:
        self._directory = directory
        self._catalog = catalog
        self._owner_of = owner_of
        self._session_key = session_key
        self._bus = bus
        self._subscribers: dict[str, dict[str, Any]] = {}
        """uri -> {session key: session}: 2025-era sessions that subscribed to it."""

    # -- handlers ----------------------------------------------------------------------------

    async def list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        owner = self._owner_of(ctx)
        described = await self._described(owner)
        described.sort(key=lambda d: str(d.get("last_activity") or ""), reverse=True)
        resources = [
            Resource(
                uri=PROCESSES_URI,
                name="processes",
                title="Your processes",
                description="Your processes: program, turns, cost, last activity and parent (JSON).",
                mime_type="application/json",
            )
        ]
        for found in described[:LISTED_PROCESSES]:
            resources.append(
                Resource(
                    uri=transcript_uri(str(found["process_id"])),
                    name=f"{found['program']} conversation {found['process_id']}",
                    title=f"{found['program']}: {found['turns']} turns",
                    description=f"last active {found['last_activity']}",
                    mime_type="text/markdown",
                )
            )
        for published in sorted(self._catalog().programs.values(), key=lambda p: p.name):
            resources.append(
                Resource(
                    uri=f"llmproc://programs/{published.name}",
                    name=f"program {published.name}",
                    title=f"Program {published.name}",
                    description=published.description,
                    mime_type="text/plain",
                )
            )
        return ListResourcesResult(resources=resources)

    async def list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListResourceTemplatesResult:
        return ListResourceTemplatesResult(resource_templates=TEMPLATES)

    async def read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: ReadResourceRequestParams
    ) -> ReadResourceResult:
        uri = str(params.uri)
        owner = self._owner_of(ctx)
        if uri == PROCESSES_URI:
            return _json(uri, {"processes": await self._described(owner)})
        if matched := _PROCESS.fullmatch(uri):
            handle = await self._handle(matched["pid"], owner, uri)
            messages = handle.process.history_view()
            if matched["part"] == "/tree":
                return _json(uri, await self._tree(handle, owner, await self._described(owner)))
            if matched["part"]:
                return _json(uri, [message_to_json(m) for m in messages])
            children = handle.process.child_records
            return _text(uri, "text/markdown", transcript.render(handle.describe(), messages, children))
        if matched := _PROGRAM.fullmatch(uri):
            published = self._catalog().programs.get(matched["name"])
            if published is None:
                raise _not_found(uri)
            try:
                source = published.path.read_text(encoding="utf-8")
            except OSError as err:
                raise MCPError(INVALID_PARAMS, f"program {published.name} can not be read: {err}") from None
            about = {"tool": published.tool_name, "description": published.description}
            return ReadResourceResult(
                contents=[
                    TextResourceContents(uri=uri, mime_type="application/toml", text=source),
                    TextResourceContents(uri=uri, mime_type="application/json", text=json.dumps(about)),
                ]
            )
        raise _not_found(uri)

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        """A 2025-era session asks to hear when `uri` changes; only what it may read."""
        uri = str(params.uri)
        await self._check_readable(uri, self._owner_of(ctx))
        key = self._session_key(ctx)
        if key is not None:
            self._subscribers.setdefault(uri, {})[key] = ctx.session
        return EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        key = self._session_key(ctx)
        subscribed = self._subscribers.get(str(params.uri))
        if key is not None and subscribed is not None:
            subscribed.pop(key, None)
            if not subscribed:
                del self._subscribers[str(params.uri)]
        return EmptyResult()

    # -- what changed --------------------------------------------------------------------------

    async def turn_completed(self, handle: Handle) -> None:
        """A turn of `handle` is stored: its transcript, its messages and the process list changed."""
        uri = transcript_uri(handle.id)
        for changed in (uri, f"{uri}/messages.json", PROCESSES_URI):
            await self._updated(changed)

    async def processes_changed(self) -> None:
        """Processes appeared or went: listings of resources changed (for some caller)."""
        await self._updated(PROCESSES_URI)
        await self._bus.publish(ResourcesListChanged())

    def forget(self, key: str) -> None:
        """A session ended: it hears nothing more."""
        for uri in list(self._subscribers):
            self._subscribers[uri].pop(key, None)
            if not self._subscribers[uri]:
                del self._subscribers[uri]

    async def _updated(self, uri: str) -> None:
        await self._bus.publish(ResourceUpdated(uri=uri))  # 2026-07-28 listeners of this uri
        for key, session in list(self._subscribers.get(uri, {}).items()):
            try:
                await session.send_resource_updated(uri)
            except Exception:  # the session has gone
                self.forget(key)

    # -- reading -------------------------------------------------------------------------------

    async def _described(self, owner: Owner) -> list[dict[str, Any]]:
        if owner is None:  # a caller with no identity owns nothing that could be listed
            return []
        try:
            return await self._directory.described(owner)
        except LLMProcError as err:
            raise MCPError(INVALID_PARAMS, str(err)) from None

    async def _tree(
        self,
        handle: Handle,
        owner: Owner,
        described: list[dict[str, Any]],
        seen: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """`handle` and its children: those its runs started (spawn, the fork tool: records kept
        in the process) and its copies made with the server's `fork` tool, each with theirs."""
        node = {**handle.describe(), "usage": handle.process.usage.to_dict()}
        children: list[dict[str, Any]] = [c.to_dict() for c in handle.process.child_records]
        seen = seen | {handle.id}
        for found in described:
            if found.get("parent_id") == handle.id and found["process_id"] not in seen:
                try:
                    copy = await self._directory.get(str(found["process_id"]), owner)
                except LLMProcError:  # gone since it was listed
                    continue
                children.append({"kind": "copy", **await self._tree(copy, owner, described, seen)})
        node["children"] = children
        return node

    async def complete(
        self, ctx: ServerRequestContext[Any, Any], template: str, argument: str, typed: str
    ) -> list[str]:
        """Completion of a template's argument: the caller's process ids, or program names."""
        if template.startswith("llmproc://processes/") and argument == "process_id":
            described = await self._described(self._owner_of(ctx))
            return sorted(str(d["process_id"]) for d in described if str(d["process_id"]).startswith(typed))
        if template == "llmproc://programs/{name}" and argument == "name":
            return [n for n in sorted(self._catalog().programs) if n.startswith(typed)]
        return []

    async def _handle(self, process_id: str, owner: Owner, uri: str) -> Handle:
        try:
            return await self._directory.get(process_id, owner)
        except LLMProcError:
            raise _not_found(uri) from None

    async def _check_readable(self, uri: str, owner: Owner) -> None:
        if uri == PROCESSES_URI:
            return
        if matched := _PROCESS.fullmatch(uri):
            await self._handle(matched["pid"], owner, uri)
            return
        if (matched := _PROGRAM.fullmatch(uri)) and matched["name"] in self._catalog().programs:
            return
        raise _not_found(uri)


def _json(uri: str, data: Any) -> ReadResourceResult:
    return _text(uri, "application/json", json.dumps(data, indent=2, ensure_ascii=False))


def _text(uri: str, mime_type: str, text: str) -> ReadResourceResult:
    return ReadResourceResult(contents=[TextResourceContents(uri=uri, mime_type=mime_type, text=text)])
