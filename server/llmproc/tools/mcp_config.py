"""Which MCP servers a program uses and which of their tools, resolved at load time.

Servers come from `[mcp] config_path` (a Claude-Desktop-style `mcpServers` JSON) and
inline `[mcp.servers.NAME]` tables (inline wins on a name clash). `${VAR}` and
`${VAR:-default}` in commands, arguments, environment values, URLs and headers are
expanded here, so a missing variable is a load error, not a failed tool call later.
Nothing in this module imports the MCP SDK: programs load without it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import AccessLevel, McpServerConfig, McpToolConfig, McpToolSelection, ProgramConfig
from ..errors import McpConfigError

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class McpServerSpec:
    """One server definition. Processes whose specs have the same `key` share one connection."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    url: str | None = None
    transport: str = "stdio"
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.command, self.args, self.env, self.cwd, self.url, self.transport, self.headers)

    def describe(self) -> str:
        """How the server is reached, for error messages (never the headers: they hold secrets)."""
        if self.url:
            return f"{self.transport} {self.url}"
        return "command: " + " ".join([self.command or "", *self.args])


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """The tools chosen from one server: all of them, or the named ones with their overrides."""

    all: bool = False
    tools: dict[str, McpToolConfig] = field(default_factory=dict)

    def override(self, tool: str) -> McpToolConfig | None:
        return self.tools.get(tool)


def _expand(value: str, loc: tuple[str, ...]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None:
            return found
        if default is not None:
            return default
        raise McpConfigError(
            f"environment variable {name} is not set (used as ${{{name}}}); "
            f"set it or write ${{{name}:-default}}",
            loc,
        )

    return _VARIABLE.sub(replace, value)


def _spec(name: str, server: McpServerConfig, base_dir: Path, loc: tuple[str, ...]) -> McpServerSpec:
    def expand_map(values: dict[str, str], key: str) -> tuple[tuple[str, str], ...]:
        return tuple((k, _expand(v, (*loc, key, k))) for k, v in values.items())

    cwd = None
    if server.cwd:
        path = Path(_expand(server.cwd, (*loc, "cwd"))).expanduser()
        cwd = str(path if path.is_absolute() else base_dir / path)
    transport = server.transport or ("stdio" if server.command else "streamable-http")
    return McpServerSpec(
        name=name,
        command=_expand(server.command, (*loc, "command")) if server.command else None,
        args=tuple(_expand(a, (*loc, "args")) for a in server.args),
        env=expand_map(server.env, "env"),
        cwd=cwd,
        url=_expand(server.url, (*loc, "url")) if server.url else None,
        transport="streamable-http" if transport == "http" else transport,
        headers=expand_map(server.headers, "headers"),
        timeout=server.timeout,
    )


def _servers_from_json(path: Path) -> dict[str, McpServerConfig]:
    loc = ("mcp", "config_path")
    if not path.is_file():
        raise McpConfigError(f"[mcp] config_path '{path}' not found", loc)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as err:
        raise McpConfigError(f"[mcp] config_path '{path}' can not be read: {err}", loc) from None
    except json.JSONDecodeError as err:
        raise McpConfigError(
            f"[mcp] config_path '{path}' is not valid JSON: {err.msg} (line {err.lineno})", loc
        ) from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError(f"[mcp] config_path '{path}' has no \"mcpServers\" object", loc)
    parsed: dict[str, McpServerConfig] = {}
    for name, entry in servers.items():
        if not isinstance(entry, dict):
            raise McpConfigError(f"{path}: mcpServers.{name} must be an object", loc)
        # Claude Desktop / Claude Code spell the transport "type" and add keys we do not use.
        fields = {k: v for k, v in entry.items() if k in McpServerConfig.model_fields}
        if "type" in entry and "transport" not in fields:
            fields["transport"] = entry["type"]
        try:
            parsed[name] = McpServerConfig.model_validate(fields)
        except ValidationError as err:
            problem = err.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise McpConfigError(
                f"{path}: mcpServers.{name}{'.' + where if where else ''}: {problem['msg']}", loc
            ) from None
    return parsed


def _choice(selection: McpToolSelection) -> ToolChoice:
    if selection == "all":
        return ToolChoice(all=True)
    if isinstance(selection, dict):
        return ToolChoice(tools=dict(selection))
    tools: dict[str, McpToolConfig] = {}
    for entry in selection:
        if isinstance(entry, str):
            tools[entry] = McpToolConfig()
        else:
            tools[entry.name or ""] = entry
    return ToolChoice(tools=tools)


def resolve_mcp(
    config: ProgramConfig, base_dir: Path, suggest: Callable[[str, Any], str]
) -> tuple[dict[str, McpServerSpec], dict[str, ToolChoice]]:
    """The program's servers and, for each server it uses, the tools it chose."""
    mcp = config.mcp
    configs: dict[str, tuple[McpServerConfig, tuple[str, ...]]] = {}
    if mcp.config_path:
        path = Path(mcp.config_path).expanduser()
        path = path if path.is_absolute() else base_dir / path
        for name, server in _servers_from_json(path).items():
            configs[name] = (server, ("mcp", "config_path"))
    for name, server in mcp.servers.items():
        configs[name] = (server, ("mcp", "servers", name))
    selections: dict[str, McpToolSelection] = {**(mcp.tools or {}), **config.tools.mcp}
    for name, selection in selections.items():
        where = ("tools", "mcp", name) if name in config.tools.mcp else ("mcp", "tools", name)
        if name not in configs:
            known = ", ".join(configs) or "none defined"
            raise McpConfigError(
                f"[tools.mcp] {name}: no MCP server named '{name}'{suggest(name, configs)} "
                f"(servers: {known})",
                where,
            )
        if isinstance(selection, list):
            for entry in selection:
                if isinstance(entry, McpToolConfig) and not entry.name:
                    raise McpConfigError(f"[tools.mcp] {name}: a tool table in the list needs a name", where)
    # Without a selection every defined server is used with all its tools.
    chosen: dict[str, McpToolSelection] = selections or dict.fromkeys(configs, "all")
    specs = {name: _spec(name, configs[name][0], base_dir, configs[name][1]) for name in chosen}
    return specs, {name: _choice(selection) for name, selection in chosen.items()}


def access_from_annotations(annotations: Any) -> AccessLevel:
    """The MCP tool hints as an access level: read-only is read, destructive is admin, else write."""
    if annotations is None:
        return "write"
    if getattr(annotations, "read_only_hint", None):
        return "read"
    if getattr(annotations, "destructive_hint", None):
        return "admin"
    return "write"
