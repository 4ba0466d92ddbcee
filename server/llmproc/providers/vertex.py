"""Credentials shared by the Vertex AI providers (anthropic_vertex, gemini_vertex).

By default the SDKs use Google Application Default Credentials. A program may instead
name, with `[model] api_key_env`, a variable holding an OAuth access token (for example
from `gcloud auth print-access-token`), which suits CI jobs and containers.
"""

from __future__ import annotations

import os

from ..config import ModelConfig
from ..errors import MissingAPIKeyError


def access_token(model: ModelConfig, provider: str) -> str | None:
    """The access token the program names, None for Application Default Credentials."""
    if not model.api_key_env:
        return None
    token = os.environ.get(model.api_key_env)
    if not token:
        raise MissingAPIKeyError(
            f"provider '{provider}' needs an access token: set the environment variable {model.api_key_env} "
            "(or remove [model] api_key_env to use Google Application Default Credentials)",
            provider=provider,
        )
    return token
