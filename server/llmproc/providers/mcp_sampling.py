"""The `mcp_sampling` provider: the host's own model, asked through MCP sampling.

A program with `provider = "mcp_sampling"` needs no API key: when llmproc-mcp runs it for a
client, each model turn becomes a sampling request to that client (Claude Desktop, VS Code,
...), with the program's tools when the client supports tool use in sampling. On 2025-era
connections that is a `sampling/createMessage` request; under 2026-07-28 the server hands it
back as an input_required round (`ClientChannel.ask`). The MCP server puts the calling client
in `client_channel.current_client` for the length of a run; outside llmproc-mcp, or with a client that offers
no sampling, a run fails with one clear `ProviderError`. Sampling reports no usage, so cost is
unknown.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..client_channel import current_client
from ..errors import ProviderError
from ..messages import ImageBlock, Message, TextBlock, ToolCallBlock, ToolResultBlock
from ..result import Usage
from .base import (
    ClientPool,
    ProviderEntry,
    ProviderRequest,
    ProviderResponse,
    ProviderSettings,
    fixed_parameters,
)

PARAMETERS = frozenset({"max_tokens", "temperature", "stop"})
DEFAULT_MAX_TOKENS = 4096


def create(settings: ProviderSettings, clients: ClientPool) -> MCPSamplingProvider:
    return MCPSamplingProvider(settings)


ENTRY = ProviderEntry(create=create, parameters=fixed_parameters(PARAMETERS))


class MCPSamplingProvider:
    name = "mcp_sampling"

    def __init__(self, settings: ProviderSettings) -> None:
        self.parameters = settings.parameters
        self.model_hint = settings.model.name

    def _error(self, message: str) -> ProviderError:
        return ProviderError(message, provider=self.name)

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        import mcp_types as types
        from mcp.shared.exceptions import MCPError

        host = current_client.get()
        if host is None:
            raise self._error(
                "provider 'mcp_sampling' asks the MCP client for completions, so it runs only inside "
                "llmproc-mcp, for a client that offers sampling; use another provider here"
            )
        if host.ask is None and not getattr(host.session, "can_send_request", True):
            raise self._error(
                "this client connected with MCP 2026-07-28, which has no request channel back to it; "
                "provider 'mcp_sampling' needs a 2025-era connection with sampling"
            )
        capabilities = host.session.client_capabilities
        sampling = getattr(capabilities, "sampling", None)
        if sampling is None:
            raise self._error(
                "the MCP client did not offer sampling, which provider 'mcp_sampling' needs; "
                "use a client with sampling (or a program with another provider)"
            )
        tools = None
        if request.tools and getattr(sampling, "tools", None) is not None:
            tools = [
                types.Tool(name=t.name, description=t.description, input_schema=t.parameters)
                for t in request.tools
            ]
        parameters = self.parameters
        arguments: dict[str, Any] = {
            "messages": [_sampling_message(m) for m in request.messages],
            "max_tokens": parameters.max_tokens or DEFAULT_MAX_TOKENS,
            "system_prompt": request.system or None,
            "temperature": parameters.temperature,
            "stop_sequences": parameters.stop,
            "tools": tools,
            "model_preferences": types.ModelPreferences(hints=[types.ModelHint(name=self.model_hint)]),
        }
        try:
            if host.ask is not None:
                result = await host.ask(types.CreateMessageRequestParams(**arguments))
            else:
                with warnings.catch_warnings():  # sampling is deprecated in 2026-07-28, not gone
                    warnings.simplefilter("ignore")
                    result = await host.session.create_message(
                        **arguments, related_request_id=host.request_id
                    )
        except MCPError as err:
            raise self._error(f"the MCP client refused the sampling request: {err.message}") from None
        blocks = [
            _block(c) for c in (result.content if isinstance(result.content, list) else [result.content])
        ]
        message = Message("assistant", tuple(b for b in blocks if b is not None))
        if request.on_text is not None and message.text:
            await request.on_text(message.text)
        stop = "tool_use" if message.tool_calls else "end_turn"
        return ProviderResponse(message, Usage(), stop)


def _sampling_message(message: Message) -> Any:
    import mcp_types as types

    content: list[Any] = []
    for block in message.content:
        if isinstance(block, TextBlock) and block.text:
            content.append(types.TextContent(type="text", text=block.text))
        elif isinstance(block, ImageBlock):
            content.append(types.ImageContent(type="image", data=block.data, mime_type=block.media_type))
        elif isinstance(block, ToolCallBlock):
            content.append(
                types.ToolUseContent(type="tool_use", id=block.id, name=block.name, input=block.arguments)
            )
        elif isinstance(block, ToolResultBlock):
            inner = [types.TextContent(type="text", text=block.text or "(no output)")]
            content.append(
                types.ToolResultContent(
                    type="tool_result", tool_use_id=block.tool_call_id, content=inner, is_error=block.is_error
                )
            )
    if not content:
        content.append(types.TextContent(type="text", text=" "))
    return types.SamplingMessage(role=message.role, content=content[0] if len(content) == 1 else content)


def _block(content: Any) -> TextBlock | ImageBlock | ToolCallBlock | None:
    kind = getattr(content, "type", None)
    if kind == "text":
        return TextBlock(content.text)
    if kind == "image":
        return ImageBlock(content.data, content.mime_type)
    if kind == "tool_use":
        return ToolCallBlock(content.id, content.name, dict(content.input or {}))
    return None
