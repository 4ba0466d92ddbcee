"""Each provider route pointed at the fake server: one Harness per route, for suites run over all."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fake_provider import FakeProviderServer, Fault, RecordedRequest
from llmproc import LLMProcess, LLMProgram

ROUTES = [
    "anthropic",
    "anthropic_vertex",
    "openai",
    "openai_responses",
    "openai_compatible",
    "gemini",
    "gemini_vertex",
]


@dataclass
class Harness:
    """How one provider is pointed at the fake server."""

    name: str
    provider: str
    model: str
    fake: FakeProviderServer
    key_env: str | None
    model_extra: str = ""
    """More [model] lines: a base_url, a region, an access-token variable."""

    def program(self, extra: str = "", *, retries: int = 1, timeout: float = 5) -> str:
        lines = [
            "[model]",
            f'name = "{self.model}"',
            f'provider = "{self.provider}"',
            f"max_retries = {retries}",
            f"timeout = {timeout}",
        ]
        return (
            "\n".join(lines) + "\n" + self.model_extra + '\n[prompt]\nsystem_prompt = "Be brief."\n' + extra
        )

    def streamed(self, request: RecordedRequest) -> bool:
        return ":stream" in request.path or request.body.get("stream") is True

    def rate_limit(self) -> Fault:
        return Fault(status=429, error_type="rate_limit_error", message="slow down", retry_after="0")


def make_harness(route: str, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> Harness:
    if route == "anthropic":
        monkeypatch.setenv("ANTHROPIC_API_KEY", fake.api_key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        return Harness("anthropic", "anthropic", "claude-haiku-4-5", fake, "ANTHROPIC_API_KEY")
    if route.endswith("_vertex"):
        # Vertex with an access token from [model] api_key_env, the offline-friendly credential path
        monkeypatch.setenv("VERTEX_TOKEN", fake.api_key)
        extra = f'base_url = "{fake.url}"\nregion = "us-east5"\nproject_id = "proj"\n'
        extra += 'api_key_env = "VERTEX_TOKEN"\n'
        model = "claude-haiku-4-5@20251001" if route == "anthropic_vertex" else "gemini-2.5-flash"
        return Harness(route, route, model, fake, "VERTEX_TOKEN", model_extra=extra)
    if route == "gemini":
        monkeypatch.setenv("GEMINI_API_KEY", fake.api_key)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        return Harness("gemini", "gemini", "gemini-2.5-flash", fake, "GEMINI_API_KEY")
    if route == "openai":
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
        return Harness("openai", "openai", "gpt-4o-mini", fake, "OPENAI_API_KEY")
    if route == "openai_responses":  # a reasoning model: the Responses API route by default
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
        return Harness("openai_responses", "openai", "o4-mini", fake, "OPENAI_API_KEY")
    # a keyless OpenAI-compatible server (vLLM, Ollama...) reached through [model] base_url
    fake.api_key = "EMPTY"
    extra = f'base_url = "{fake.url}/v1"\n'
    return Harness("openai_compatible", "openai", "llama-3.1-8b", fake, None, model_extra=extra)


def start(
    harness: Harness, write_program, extra: str = "", *, retries: int = 1, timeout: float = 5, tools=()
) -> LLMProcess:
    program = LLMProgram.from_toml(write_program(harness.program(extra, retries=retries, timeout=timeout)))
    for function in tools:
        program.add_tool(function)
    return LLMProcess(program)
