"""Pydantic models of the program (TOML) schema: the one source of validation, JSON Schema and docs.

Every section of DESIGN.md is modelled here so that established programs load unchanged;
each field's `description` is what `programs/reference.toml` documents. Unknown keys are
errors (`extra="forbid"`); `program_errors.py` turns pydantic's errors into messages that
name the file, the key path, the line and the closest valid spelling.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

ProviderName = Literal[
    "anthropic", "anthropic_vertex", "openai", "gemini", "gemini_vertex", "mcp_sampling", "scripted"
]
BuiltinToolName = Literal[
    "spawn", "fork", "goto", "read_file", "list_dir", "calculator", "read_fd", "fd_to_file"
]
AccessLevel = Literal["read", "write", "admin"]
ENV_INFO_VARIABLES = ("working_directory", "platform", "date", "python_version", "hostname", "username")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PricingConfig(_Section):
    """[model.pricing]: USD per million tokens, for models llmproc has no price for."""

    input: float = Field(ge=0, description="USD per million uncached input tokens.")
    output: float = Field(ge=0, description="USD per million output tokens (reasoning included).")
    cache_read: float | None = Field(None, ge=0, description="USD per million cache-read tokens.")
    cache_write: float | None = Field(None, ge=0, description="USD per million cache-write tokens.")


class ModelConfig(_Section):
    """[model]: which model runs the program and how to reach it."""

    name: str = Field(min_length=1, description="Model name as the provider spells it.")
    provider: ProviderName = Field(description="Which API serves the model.")
    display_name: str | None = Field(
        None, description="Name shown by the CLIs; defaults to provider and name."
    )
    base_url: str | None = Field(
        None, description="API base URL; overrides the SDK's environment variable (e.g. ANTHROPIC_BASE_URL)."
    )
    api_key_env: str | None = Field(
        None, description="Environment variable holding the API key, instead of the provider's standard one."
    )
    project_id: str | None = Field(None, description="Google Cloud project (Vertex providers).")
    region: str | None = Field(None, description="Google Cloud region (Vertex providers).")
    api: Literal["auto", "chat", "responses"] = Field(
        "auto",
        description=(
            "OpenAI route: 'chat' (Chat Completions), 'responses' (Responses API), or 'auto': "
            "Responses for OpenAI reasoning models (o-series, gpt-5, codex) without base_url, else Chat."
        ),
    )
    max_iterations: int = Field(10, ge=1, le=1000, description="Model turns allowed in one run.")
    disable_automatic_caching: bool = Field(
        False, description="Turn off automatic prompt-cache breakpoints (Anthropic)."
    )
    timeout: float = Field(600.0, gt=0, le=3600, description="Seconds one provider request may take.")
    max_retries: int = Field(
        2, ge=0, le=10, description="Retries with backoff on 408/409/429/5xx and connection errors."
    )
    tool_timeout: float = Field(300.0, gt=0, description="Seconds one tool call may take.")
    pricing: PricingConfig | None = Field(None, description="Prices for cost tracking; overrides the table.")


class PromptConfig(_Section):
    """[prompt]: the system prompt and an optional first user message."""

    system_prompt: str | None = Field(
        None, validation_alias=AliasChoices("system_prompt", "system"), description="System prompt text."
    )
    system_prompt_file: str | None = Field(
        None, description="File with the system prompt, relative to the program; wins over system_prompt."
    )
    user: str | None = Field(
        None,
        validation_alias=AliasChoices("user", "user_prompt"),
        description="A first user message, run automatically by the CLIs.",
    )


class ThinkingParams(_Section):
    """[parameters.thinking]: Anthropic extended thinking."""

    type: Literal["enabled", "disabled", "adaptive"] = "enabled"
    budget_tokens: int | None = Field(None, ge=1024, description="Tokens the model may spend thinking.")
    display: Literal["summarized", "omitted"] | None = None


class ParametersConfig(_Section):
    """[parameters]: generation settings passed to the provider after validation."""

    max_tokens: int | None = Field(None, ge=1, description="Most tokens one reply may contain.")
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature.")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling.")
    top_k: int | None = Field(None, ge=1, description="Top-k sampling (Anthropic, Gemini).")
    stop: list[str] | None = Field(
        None, validation_alias=AliasChoices("stop", "stop_sequences"), description="Stop sequences."
    )
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="OpenAI frequency penalty.")
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="OpenAI presence penalty.")
    seed: int | None = Field(None, description="Sampling seed where supported.")
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = Field(
        None, description="Reasoning effort (OpenAI reasoning models; Anthropic output_config effort)."
    )
    reasoning_summary: Literal["auto", "concise", "detailed"] | None = Field(
        None, description="Reasoning summaries to return (OpenAI Responses API)."
    )
    thinking: ThinkingParams | None = Field(None, description="Anthropic extended thinking.")
    thinking_budget: int | None = Field(None, ge=-1, description="Gemini thinking budget in tokens.")
    extra_headers: dict[str, str] | None = Field(None, description="Extra HTTP headers on every request.")
    extra_body: dict[str, Any] | None = Field(
        None, description="Extra JSON fields sent as they are, for provider options llmproc does not know."
    )

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _thinking_fits_in_max_tokens(self) -> ParametersConfig:
        budget = self.thinking.budget_tokens if self.thinking else None
        if budget is not None and self.max_tokens is not None and budget >= self.max_tokens:
            raise ValueError(
                f"thinking budget_tokens ({budget}) must be less than max_tokens ({self.max_tokens})"
            )
        return self

    def given(self) -> dict[str, Any]:
        """The parameters the program set, by canonical name."""
        return self.model_dump(exclude_none=True)


class PreloadConfig(_Section):
    """[preload]: files whose contents go into the system prompt."""

    files: list[str] = Field(default_factory=list, description="Paths or globs, relative to the program.")


class McpServerConfig(_Section):
    """[mcp.servers.NAME]: one MCP server, stdio (command) or HTTP (url)."""

    command: str | None = Field(None, description="stdio: the program to start.")
    args: list[str] = Field(default_factory=list, description="stdio: its arguments.")
    env: dict[str, str] = Field(
        default_factory=dict, description="stdio: environment variables added to a safe default set."
    )
    cwd: str | None = Field(None, description="stdio: working directory, relative to the program file.")
    url: str | None = Field(None, description="HTTP: the server's URL.")
    transport: Literal["stdio", "sse", "streamable-http", "http"] | None = Field(
        None, description="'streamable-http' (alias 'http', the default for url) or 'sse'."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP: headers sent on every request.")
    timeout: float | None = Field(None, gt=0, description="Seconds one tool call may take.")

    @model_validator(mode="after")
    def _command_or_url(self) -> McpServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give exactly one of 'command' (stdio) or 'url' (HTTP)")
        if self.command and self.transport not in (None, "stdio"):
            raise ValueError(f"transport '{self.transport}' needs a url, not a command")
        if self.url and self.transport == "stdio":
            raise ValueError("transport 'stdio' needs a command, not a url")
        return self


class McpToolConfig(_Section):
    """One MCP tool chosen by name, optionally renamed or re-described for the model."""

    name: str | None = Field(None, description="The tool's name on its server (in a list of tables).")
    alias: str | None = Field(None, description="The name the model sees instead of server__tool.")
    description: str | None = Field(None, description="Replaces the server's description.")
    access: AccessLevel | None = Field(
        None,
        description=(
            "read, write or admin; default from the tool's annotations "
            "(readOnlyHint: read, destructiveHint: admin, else write)."
        ),
    )


McpToolSelection = Literal["all"] | list[str | McpToolConfig] | dict[str, McpToolConfig]


class McpConfig(_Section):
    """[mcp]: MCP servers whose tools this program may use."""

    config_path: str | None = Field(None, description="Claude-Desktop-style JSON with an mcpServers table.")
    servers: dict[str, McpServerConfig] = Field(default_factory=dict, description="Inline servers.")
    tools: dict[str, McpToolSelection] | None = Field(
        None, description="Established spelling of [tools.mcp]; both are accepted."
    )


class ToolsConfig(_Section):
    """[tools]: builtin system calls and tools, and MCP tool selection."""

    builtin: list[BuiltinToolName] = Field(
        default_factory=list,
        validation_alias=AliasChoices("builtin", "enabled"),
        description="System calls and builtin tools to enable.",
    )
    mcp: dict[str, McpToolSelection] = Field(default_factory=dict, description="Per MCP server tool choice.")
    aliases: dict[str, str] = Field(default_factory=dict, description="Alias = real tool name.")
    roots: list[str] = Field(
        default_factory=list,
        description=(
            "Folders the file tools may use, relative to the program file; default: the working directory."
        ),
    )


class LinkedProgramConfig(_Section):
    path: str = Field(description="The program file, relative to this program.")
    description: str | None = Field(None, description="What it is good at; shown in the spawn tool.")


class LimitsConfig(_Section):
    """[limits]: what the kernel allows this process and the processes it starts."""

    max_depth: int = Field(
        3, ge=0, le=20, description="How deep spawn and fork may nest below this process (0: no children)."
    )
    max_children_per_turn: int = Field(
        8, ge=1, le=100, description="Processes that spawn and fork may start in one model turn."
    )
    cost_budget_usd: float | None = Field(
        None, gt=0, description="Most USD this process and its children may spend together."
    )
    max_access: AccessLevel = Field(
        "admin", description="Highest tool access level allowed; children never get more than their parent."
    )
    max_tool_result_chars: int = Field(
        100_000,
        ge=1000,
        description="Longer tool results are cut to this size ([file_descriptor] pages them instead).",
    )


class EnvInfoConfig(BaseModel):
    """[env_info]: facts about the environment added to the system prompt; custom string keys allowed."""

    model_config = ConfigDict(extra="allow")

    variables: list[str] | Literal["all"] = Field(default_factory=list)

    @field_validator("variables")
    @classmethod
    def _known_variables(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list):
            for name in value:
                if name not in ENV_INFO_VARIABLES:
                    close = difflib.get_close_matches(name, ENV_INFO_VARIABLES, n=1)
                    hint = (
                        f"did you mean '{close[0]}'?" if close else f"known: {', '.join(ENV_INFO_VARIABLES)}"
                    )
                    raise ValueError(f"unknown variable '{name}'; {hint}")
        return value

    @model_validator(mode="after")
    def _custom_values_are_strings(self) -> EnvInfoConfig:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str):
                raise ValueError(f"custom env_info key '{key}' must be a string")
        return self


class FileDescriptorConfig(_Section):
    """[file_descriptor]: large outputs stored as fd:N and read page by page."""

    enabled: bool = Field(False, description="Turn descriptors on (and the read_fd tool with them).")
    max_direct_output_chars: int = Field(8000, ge=100, description="Larger tool results become a descriptor.")
    default_page_size: int = Field(4000, ge=100, description="Characters per page of read_fd.")
    max_input_chars: int = Field(8000, ge=100, description="Larger user inputs become a descriptor.")
    page_user_input: bool = Field(False, description="Store long user inputs as descriptors too.")
    enable_references: bool = Field(
        False, description='Text the model wraps in <ref id="NAME">…</ref> becomes descriptor ref:NAME.'
    )


class DemoConfig(_Section):
    """[demo]: how llmproc-demo presents the program."""

    display_name: str | None = None
    prompts: list[str] = Field(default_factory=list)
    pause_between_prompts: bool = True


class ServerConfig(_Section):
    """[server]: how llmproc-mcp publishes the program."""

    description: str | None = None
    publish: bool = True
    title: str | None = Field(None, description="The tool's title, which hosts show instead of its name.")
    icon: str | None = Field(
        None,
        description="An https:// URL, or an image file (PNG, JPEG, SVG, WebP; at most 64 KB) relative "
        "to the program, shown with the tool where the host supports icons.",
    )


class ScriptedToolCall(_Section):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ScriptedReply(_Section):
    text: str = ""
    thinking: str | None = None
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)


class ScriptedConfig(_Section):
    """[scripted]: replies of the offline `scripted` provider, one per model turn."""

    replies: list[str | ScriptedReply] = Field(default_factory=list)
    when_exhausted: Literal["error", "cycle", "repeat_last"] = "error"


class ProgramConfig(_Section):
    """A whole program file."""

    model: ModelConfig
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    parameters: ParametersConfig = Field(default_factory=ParametersConfig)
    preload: PreloadConfig = Field(default_factory=PreloadConfig)
    mcp: McpConfig = Field(default_factory=McpConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    linked_programs: dict[str, str | LinkedProgramConfig] = Field(default_factory=dict)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    env_info: EnvInfoConfig = Field(default_factory=EnvInfoConfig)
    file_descriptor: FileDescriptorConfig = Field(default_factory=FileDescriptorConfig)
    demo: DemoConfig = Field(default_factory=DemoConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    scripted: ScriptedConfig | None = None


def program_json_schema() -> dict[str, Any]:
    """JSON Schema of program files, for editors (Taplo / Even Better TOML) and `llmproc schema`.

    Keys the loader also accepts under an older name (`system`, `user_prompt`, ...) are listed
    too, so established programs check clean in an editor.
    """
    schema = ProgramConfig.model_json_schema(by_alias=False)
    for model in _models_below(ProgramConfig):
        properties = (schema if model is ProgramConfig else schema["$defs"][model.__name__])["properties"]
        for name, field in model.model_fields.items():
            choices = getattr(field.validation_alias, "choices", ())
            for alias in (c for c in choices if isinstance(c, str) and c != name):
                properties[alias] = {**properties[name], "description": f"Older name of `{name}`."}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "llmproc program",
        "description": "An llmproc program file; every key is documented in programs/reference.toml.",
    }


def program_json_schema_text() -> str:
    """The schema as committed in schema/program.schema.json and printed by `llmproc schema`."""
    import json

    return json.dumps(program_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _models_below(root: type[BaseModel]) -> list[type[BaseModel]]:
    """`root` and every section model its fields refer to."""
    found: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            todo.extend(_model_types(field.annotation))
    return found


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _model_types(arg)]
