"""A fake model-provider HTTP server for tests and benchmarks.

The real provider SDKs talk to it over 127.0.0.1. It speaks each API's wire format
(JSON and SSE streaming), builds every body from the SDK's own response types,
validates requests as strictly as the real API does, and records what it received.
Tests script its turns (`Turn`) and failures (`Fault`); with an empty script it answers
automatically: it calls the first offered tool, then answers with text once a tool
result comes back.
"""

from .script import Fault, ScriptedToolCall, Turn, TurnUsage
from .server import FakeProviderServer, RecordedRequest

__all__ = ["FakeProviderServer", "Fault", "RecordedRequest", "ScriptedToolCall", "Turn", "TurnUsage"]
