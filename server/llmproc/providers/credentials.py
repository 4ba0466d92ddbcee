"""API keys from the environment, with the messages a user needs when one is missing or is
still the placeholder of an example config."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from ..errors import MissingAPIKeyError

_PLACEHOLDER = re.compile(r"\s|\.\.\.|…")
"""No provider's key holds whitespace or an ellipsis; example configs' placeholders do
("your Anthropic key, for ...", "sk-ant-...")."""


def api_key_from(names: Sequence[str], *, provider: str) -> str | None:
    """The value of the first of `names` that is set, or None; a placeholder is an error, not
    a key to send (the provider would answer 401 and the user would look at the wrong thing)."""
    for name in names:
        value = os.environ.get(name)
        if not value:
            continue
        if _PLACEHOLDER.search(value.strip()):
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise MissingAPIKeyError(
                f"{name} holds a placeholder ('{shown}'), not a key: set it to your {provider} API "
                "key where the environment is configured (for a server, the host's config) or leave it out",
                provider=provider,
            )
        return value
    return None


def missing_key(names: Sequence[str], *, provider: str, named_in_program: bool) -> MissingAPIKeyError:
    """The error for a provider that found none of its key variables set."""
    other = "" if named_in_program else " (or name another one with [model] api_key_env)"
    return MissingAPIKeyError(
        f"provider '{provider}' needs an API key: set the environment variable {' or '.join(names)}{other}",
        provider=provider,
    )
