"""LLMProgram: a validated program, loaded from TOML, a dict or Python arguments.

Loading reads and checks everything a program refers to (prompt file, preload files,
linked-program paths) so that mistakes surface at load time with the file and key
named, not in the middle of a conversation. Linked programs themselves load lazily.
"""

from __future__ import annotations

import base64
import functools
import glob
import hashlib
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from . import env_info
from .config import LinkedProgramConfig, ProgramConfig
from .errors import ProgramError
from .program_errors import find_line, format_validation_error, suggest
from .providers import asks_client, supported_parameters
from .providers.base import ProviderSettings
from .special_files import kind_of
from .tools.mcp_config import McpConfigError, McpServerSpec, ToolChoice, resolve_mcp

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def read_text_file(path: Path, *, what: str, source: str) -> str:
    """Read a UTF-8 text file or raise a ProgramError that says what is wrong with it."""
    where = f"{source}: {what} '{path}'"
    if not path.exists():
        raise ProgramError(f"{where} not found")
    if path.is_dir():
        raise ProgramError(f"{where} is a directory, not a file")
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):  # a FIFO would block the loader forever, a device never end
        raise ProgramError(f"{where} is {kind_of(mode)}, not a regular file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ProgramError(f"{where} can not be read: {err.strerror or err}") from None
    if b"\x00" in data:
        raise ProgramError(f"{where} is a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ProgramError(
            f"{where} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "save it as UTF-8"
        ) from None


def _parse_toml(path: Path) -> tuple[dict[str, Any], str]:
    if path.suffix != ".toml" and not path.exists() and path.with_suffix(".toml").exists():
        raise ProgramError(f"{path}: program file not found; did you mean '{path.with_suffix('.toml')}'?")
    if not path.exists():
        raise ProgramError(f"{path}: program file not found")
    text = read_text_file(path, what="program file", source=str(path))
    if not text.strip():
        raise ProgramError(
            f"{path}: program file is empty; a program needs at least [model] name and provider"
        )
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        line = getattr(err, "lineno", None)
        if line is None and "(at line " in message:
            line = int(message.rsplit("(at line ", 1)[1].split(",")[0])
        message = message.split(" (at line ")[0]
        prefix = f"{path}:{line}" if line else str(path)
        raise ProgramError(f"{prefix}: invalid TOML: {message}") from None


_ICON_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
               ".webp": "image/webp"}  # fmt: skip
_ICON_BYTES = 64 * 1024


class LLMProgram:
    """A program: model, prompt, parameters and tools, validated and with paths resolved.

    Build one with `LLMProgram.from_toml(path)`, `LLMProgram.from_dict(data)` or the
    constructor, then `await program.start()` for a process.
    """

    config: ProgramConfig
    mcp_servers: dict[str, McpServerSpec]
    mcp_tools: dict[str, ToolChoice]
    function_tools: list[Callable[..., Any]]
    scripted_function: Callable[[Sequence[Any]], Any] | None

    def __init__(
        self,
        model_name: str,
        provider: str,
        system_prompt: str | None = None,
        parameters: dict[str, Any] | None = None,
        tools: Sequence[Callable[..., Any] | str] | None = None,
        *,
        display_name: str | None = None,
        base_url: str | None = None,
        max_iterations: int | None = None,
        preload_files: Sequence[str] | None = None,
        linked_programs: dict[str, str | dict[str, str]] | None = None,
        scripted_replies: Sequence[str | dict[str, Any]] | None = None,
        scripted_function: Callable[[Sequence[Any]], Any] | None = None,
        base_dir: str | Path | None = None,
        **model_options: Any,
    ) -> None:
        model: dict[str, Any] = {"name": model_name, "provider": provider, **model_options}
        for key, value in (("display_name", display_name), ("base_url", base_url)):
            if value is not None:
                model[key] = value
        if max_iterations is not None:
            model["max_iterations"] = max_iterations
        data: dict[str, Any] = {"model": model, "parameters": dict(parameters or {})}
        if system_prompt is not None:
            data["prompt"] = {"system_prompt": system_prompt}
        builtin = [t for t in tools or [] if isinstance(t, str)]
        if builtin:
            data["tools"] = {"builtin": builtin}
        if preload_files:
            data["preload"] = {"files": list(preload_files)}
        if linked_programs:
            data["linked_programs"] = dict(linked_programs)
        if scripted_replies is not None:
            data["scripted"] = {"replies": list(scripted_replies)}
        self._init(data, path=None, text=None, base_dir=Path(base_dir) if base_dir else Path.cwd())
        self.function_tools.extend(t for t in tools or [] if not isinstance(t, str))
        self.scripted_function = scripted_function

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_toml(cls, path: str | Path) -> LLMProgram:
        """Load and validate a program file; every problem raises ProgramError."""
        path = Path(path).expanduser()
        data, text = _parse_toml(path)
        program = cls.__new__(cls)
        program._init(data, path=path.resolve(), text=text, base_dir=path.resolve().parent)
        return program

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, base_dir: str | Path | None = None, source: str | None = None
    ) -> LLMProgram:
        """Validate a program given as a dict with the TOML structure."""
        program = cls.__new__(cls)
        program._init(
            data, path=None, text=None, base_dir=Path(base_dir) if base_dir else Path.cwd(), source=source
        )
        return program

    def _init(
        self,
        data: dict[str, Any],
        *,
        path: Path | None,
        text: str | None,
        base_dir: Path,
        source: str | None = None,
    ) -> None:
        self.path = path
        self.base_dir = base_dir
        self.function_tools = []
        self.scripted_function = None
        self.source = source or (str(path) if path else "<program>")
        if not isinstance(data, dict):
            raise ProgramError(f"{self.source}: a program must be a table of sections")
        try:
            self.config = ProgramConfig.model_validate(data)
        except ValidationError as err:
            problems = format_validation_error(err, self.source, text)
            raise ProgramError("\n".join(problems), problems=problems) from None
        self._text = text
        self._check_consistency()
        self.system_prompt = self._build_system_prompt()
        self.linked_program_paths = self._resolve_linked_programs()
        self._linked: dict[str, LLMProgram] = {}
        try:
            self.mcp_servers, self.mcp_tools = resolve_mcp(self.config, self.base_dir, suggest)
        except McpConfigError as err:
            raise self._error(err.loc, str(err)) from None

    def _error(self, loc: tuple[str, ...], message: str) -> ProgramError:
        line = find_line(self._text, loc) if self._text else None
        return ProgramError(f"{self.source}:{line}: {message}" if line else f"{self.source}: {message}")

    def _check_consistency(self) -> None:
        provider = self.config.model.provider
        allowed, where = supported_parameters(self.config.model)
        for name in self.config.parameters.given():
            if name not in allowed:
                hint = suggest(name, allowed)
                raise self._error(
                    ("parameters", name),
                    f"[parameters] {name} is not supported by {where}"
                    f"{hint or '; pass provider-specific options in [parameters] extra_body'}",
                )
        if self.config.model.api != "auto" and provider != "openai":
            raise self._error(
                ("model", "api"), "[model] api chooses an OpenAI route; only provider = 'openai' takes it"
            )
        builtin = self.config.tools.builtin
        if "spawn" in builtin and not self.config.linked_programs:
            raise self._error(
                ("tools", "builtin"),
                "[tools] builtin includes 'spawn' but [linked_programs] is empty; link a program to spawn",
            )
        if self.config.scripted is not None and provider != "scripted":
            raise self._error(("scripted",), "[scripted] is only used with provider = 'scripted'")
        if self.config.server.icon is not None:
            self.server_icon  # noqa: B018  (checked on load: a bad icon names the key and the fix)

    @functools.cached_property
    def server_icon(self) -> tuple[str, str | None] | None:
        """[server] icon as an icon's `src` and media type: the URL, or the file as a data: URI."""
        given = self.config.server.icon
        if given is None:
            return None
        if given.startswith("https://"):
            return given, _ICON_TYPES.get(Path(given.split("?")[0]).suffix.lower())
        if "://" in given or given.startswith("data:"):
            raise self._error(("server", "icon"), "[server] icon must be an https:// URL or an image file")
        path = self.resolve(given)
        media_type = _ICON_TYPES.get(path.suffix.lower())
        if media_type is None:
            raise self._error(
                ("server", "icon"),
                f"[server] icon {given}: use a .png, .jpg, .svg or .webp file, or an https:// URL",
            )
        try:
            data = path.read_bytes()
        except OSError as err:
            raise self._error(
                ("server", "icon"), f"[server] icon {given} can not be read: {err.strerror or err}"
            ) from None
        if len(data) > _ICON_BYTES:
            raise self._error(
                ("server", "icon"),
                f"[server] icon {given} is {len(data):,} bytes; at most {_ICON_BYTES:,} "
                "(every tools/list carries it): make it smaller or give an https:// URL",
            )
        return f"data:{media_type};base64,{base64.b64encode(data).decode()}", media_type

    # -- resolution ----------------------------------------------------------------------------

    def resolve(self, relative: str) -> Path:
        """A path from the program, relative to the program's folder."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def _build_system_prompt(self) -> str:
        prompt = self.config.prompt
        base = prompt.system_prompt or ""
        if prompt.system_prompt_file:
            base = read_text_file(
                self.resolve(prompt.system_prompt_file),
                what="[prompt] system_prompt_file",
                source=self.source,
            )
        parts = [base.strip()] if base.strip() else []
        env = env_info.render(self.config.env_info)
        if env:
            parts.append(env)
        preload = self._preload_block()
        if preload:
            parts.append(preload)
        return "\n\n".join(parts)

    def _preload_block(self) -> str:
        files: list[Path] = []
        for pattern in self.config.preload.files:
            full = self.resolve(pattern)
            if glob.has_magic(pattern):
                matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
                if not matches:
                    raise self._error(("preload", "files"), f"[preload] files: '{pattern}' matched no files")
                files.extend(matches)
            else:
                files.append(full)
        if not files:
            return ""
        entries = []
        for path in files:
            content = read_text_file(path, what="[preload] file", source=self.source)
            entries.append(f'<file path="{path.name}">\n{content}\n</file>')
        return "<preload>\n" + "\n".join(entries) + "\n</preload>"

    def _resolve_linked_programs(self) -> dict[str, tuple[Path, str | None]]:
        linked: dict[str, tuple[Path, str | None]] = {}
        for name, entry in self.config.linked_programs.items():
            spec = entry if isinstance(entry, LinkedProgramConfig) else LinkedProgramConfig(path=entry)
            path = self.resolve(spec.path)
            if not path.is_file():
                raise self._error(
                    ("linked_programs", name), f"[linked_programs] {name}: program file '{path}' not found"
                )
            linked[name] = (path, spec.description)
        return linked

    def linked_program(self, name: str) -> LLMProgram:
        """A linked program, loaded on first use and kept (ProgramError if it is invalid)."""
        program = self._linked.get(name)
        if program is None:
            path, _ = self.linked_program_paths[name]
            program = self._linked[name] = LLMProgram.from_toml(path)
        return program

    # -- use -----------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self.config.model.name

    @property
    def provider(self) -> str:
        return self.config.model.provider

    @property
    def display_name(self) -> str:
        return (
            self.config.demo.display_name
            or self.config.model.display_name
            or f"{self.config.model.provider} {self.config.model.name}"
        )

    @functools.cached_property
    def source_hash(self) -> str | None:
        """SHA-256 of the file text this program was loaded from (None when built in Python).

        Snapshots record it, so a restore can tell that the file has changed since."""
        return hashlib.sha256(self._text.encode("utf-8")).hexdigest() if self._text is not None else None

    def add_tool(self, function: Callable[..., Any]) -> LLMProgram:
        """Register a Python function as a tool of processes started from this program."""
        self.function_tools.append(function)
        return self

    @property
    def asks_client(self) -> bool:
        """Whether each model turn is a request to the MCP client running this program."""
        return asks_client(self.config.model.provider)

    @property
    def provider_settings(self) -> ProviderSettings:
        """What this program's provider is built from."""
        config = self.config
        return ProviderSettings(config.model, config.parameters, config.scripted, self.scripted_function)

    starter: ClassVar[Callable[[LLMProgram], Any] | None] = None
    """Makes a process of a program; `llmproc.process`, the layer above programs, installs it."""

    async def start(self) -> Any:
        """Create a process (an `LLMProcess`) running this program."""
        if LLMProgram.starter is None:
            raise ProgramError("no process layer is loaded: import llmproc (or llmproc.process) first")
        return LLMProgram.starter(self)

    def __repr__(self) -> str:
        return f"LLMProgram({self.source!r}, provider={self.provider!r}, model={self.model_name!r})"
