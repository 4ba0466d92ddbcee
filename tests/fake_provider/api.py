"""The way every request goes through the fake, whichever API it speaks.

A request is refused as the real API would refuse it (credentials, headers, an invalid
body); otherwise the next scripted item answers it: a `Fault` (an error status, a hang, an
error inside a stream, a stream cut short) or a `Turn`, sent whole or streamed. Each API
module subclasses `FakeApi` and fills in only its wire format.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .responses import ConversationView, JsonResponse, SseResponse
from .script import Fault, Turn

if TYPE_CHECKING:
    from .server import FakeProviderServer


class FakeApi:
    def matches(self, path: str) -> bool:
        raise NotImplementedError

    def refusal(
        self, fake: FakeProviderServer, path: str, headers: dict[str, str], body: Any
    ) -> JsonResponse | None:
        """The error the real API answers this request with before any model sees it, if any."""
        raise NotImplementedError

    def view(self, body: dict[str, Any]) -> ConversationView:
        raise NotImplementedError

    def reply(self, fake: FakeProviderServer, turn: Turn, path: str, body: dict[str, Any]) -> Any:
        """The reply to `turn`, as the SDK's response type."""
        raise NotImplementedError

    def streams(self, path: str, body: dict[str, Any]) -> bool:
        return bool(body.get("stream"))

    def stream(self, reply: Any, body: dict[str, Any]) -> SseResponse:
        raise NotImplementedError

    def dump(self, reply: Any) -> Any:
        return reply.model_dump(mode="json", exclude_unset=True)

    def error(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> JsonResponse:
        raise NotImplementedError

    def in_stream_error(self, fault: Fault) -> SseResponse | None:
        """An error event inside a 200 stream; None for an API that has no such event."""
        return None

    def fault_kind(self, fault: Fault) -> str:
        return fault.error_type

    def partial(self, fake: FakeProviderServer, path: str, body: dict[str, Any]) -> SseResponse:
        """A stream of a reply, for a fault to cut short."""
        return self.stream(self.reply(fake, Turn(text="partial " * 20), path, body), body)

    # -- the same for every API --------------------------------------------------------------------

    def handle(
        self, fake: FakeProviderServer, path: str, headers: dict[str, str], body: Any
    ) -> JsonResponse | SseResponse:
        refused = self.refusal(fake, path, headers, body)
        if refused is not None:
            return refused
        item = fake.next_item(self.view(body), body)
        if isinstance(item, Fault):
            return self.fault(fake, item, path, body)
        reply = self.reply(fake, item, path, body)
        if self.streams(path, body):
            return self.stream(reply, body)
        return JsonResponse(200, self.dump(reply))

    def fault(
        self, fake: FakeProviderServer, fault: Fault, path: str, body: dict[str, Any]
    ) -> JsonResponse | SseResponse:
        if fault.hang:
            time.sleep(fault.hang)
        if fault.in_stream:
            event = self.in_stream_error(fault)
            if event is not None:
                return event
        if fault.cut_stream_after is not None:
            return SseResponse(self.partial(fake, path, body).frames, cut_after=fault.cut_stream_after)
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = fault.retry_after
        response = self.error(fault.status, self.fault_kind(fault), fault.message, headers)
        response.malformed = fault.malformed
        return response
