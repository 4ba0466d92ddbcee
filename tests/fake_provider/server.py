"""The HTTP side of the fake provider: a threaded server on 127.0.0.1 with a script queue."""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import anthropic_api, gemini_api, openai_chat_api, openai_responses_api
from .responses import ConversationView, JsonResponse, SseResponse
from .script import Fault, ScriptedToolCall, Turn


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


_APIS = [anthropic_api.API, openai_chat_api.API, openai_responses_api.API, gemini_api.API]


def _example_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Arguments satisfying a simple JSON schema's required properties."""
    samples = {"string": "value", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}
    properties = schema.get("properties", {})

    def example(spec: dict[str, Any]) -> Any:
        if spec.get("enum"):
            return spec["enum"][0]
        return samples.get(spec.get("type", "string"), "value")

    return {name: example(properties.get(name, {})) for name in schema.get("required", [])}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # benchmarks open hundreds of connections at once
    block_on_close = False  # never wait for handlers on keep-alive connections when stopping

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out close the connection under us; that is expected, not news."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeProviderServer:
    """Run with `with FakeProviderServer() as fake:`; point an SDK at `fake.url`."""

    def __init__(self, *, latency: float = 0.0, api_key: str = "test-key") -> None:
        self.latency = latency
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._script: deque[Turn | Fault] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.signatures: dict[str, str] = {}  # issued thinking signature -> thinking text
        self.thought_tool_ids: set[str] = set()  # tool calls of replies that came with thinking
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.responder: Callable[[ConversationView, Any], Turn | Fault | None] | None = None
        """Answers requests the script queue does not: (view, request body) -> reply or None."""
        self.in_flight = 0
        self.max_in_flight = 0
        """Most requests handled at the same time: how tests see that calls ran concurrently."""

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeProviderServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- script --------------------------------------------------------------------------------

    def push(self, *items: Turn | Fault) -> None:
        """Queue replies and faults, answered in order, one per request."""
        with self._lock:
            self._script.extend(items)

    @property
    def remaining(self) -> int:
        return len(self._script)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def next_item(self, view: ConversationView, body: Any = None) -> Turn | Fault:
        with self._lock:
            if self._script:
                item = self._script.popleft()
                if isinstance(item, Fault) and item.drop:
                    raise _Dropped(item.drop)
                return item
        if self.responder is not None:
            answer = self.responder(view, body)
            if answer is not None:
                return answer
        if view.last_is_tool_result or view.first_tool is None:
            text = f"done: {view.last_tool_result_text}" if view.last_is_tool_result else view.last_user_text
            return Turn(text=text or "ok")
        name, schema = view.first_tool
        return Turn(tool_calls=(ScriptedToolCall(name, _example_arguments(schema)),))

    def bodies(self, path_part: str = "") -> list[Any]:
        return [r.body for r in self.requests if path_part in r.path]


class _Dropped(Exception):
    """The scripted fault is a connection that ends without a reply."""

    def __init__(self, how: str) -> None:
        self.how = how


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProviderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            self._write_json(JsonResponse(400, {"error": {"message": "request body is not JSON"}}))
            return
        self.fake.requests.append(RecordedRequest("POST", self.path, headers, body))
        with self.fake._lock:
            self.fake.in_flight += 1
            self.fake.max_in_flight = max(self.fake.max_in_flight, self.fake.in_flight)
        try:
            self._answer(body, headers)
        finally:
            with self.fake._lock:
                self.fake.in_flight -= 1

    def _answer(self, body: Any, headers: dict[str, str]) -> None:
        if self.fake.latency:
            time.sleep(self.fake.latency)
        api = next((a for a in _APIS if a.matches(self.path)), None)
        if api is None:
            self._write_json(JsonResponse(404, {"error": {"message": f"no such endpoint {self.path}"}}))
            return
        try:
            response = api.handle(self.fake, self.path, headers, body)
        except _Dropped as dropped:
            self._drop(dropped.how)
            return
        if isinstance(response, SseResponse):
            self._write_sse(response)
        else:
            self._write_json(response)

    def _drop(self, how: str) -> None:
        if how == "reset":  # SO_LINGER 0: close() sends RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _write_json(self, response: JsonResponse) -> None:
        data = (
            b'{"type": "message", "content": [' if response.malformed else json.dumps(response.body).encode()
        )
        self.send_response(response.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _write_sse(self, response: SseResponse) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.close_connection = True
        for index, frame in enumerate(response.frames):
            if response.cut_after is not None and index >= response.cut_after:
                self.wfile.write(frame[: len(frame) // 2].encode())  # cut off inside an event
                self.wfile.flush()
                break
            self.wfile.write(frame.encode())
            self.wfile.flush()
