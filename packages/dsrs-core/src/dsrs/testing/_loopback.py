"""Loopback HTTP servers for provider tests: real sockets on 127.0.0.1, scripted answers.

:class:`LoopbackServer` runs a threaded HTTP server on a free port and hands every request to a
handler; it records requests so tests can assert the exact bodies sent. :class:`Reply` can carry a
whole body or a sequence of chunks (SSE/NDJSON streams), a delay, or cut the connection.

:func:`openai_wire_server` is a ready server that speaks the OpenAI Chat Completions wire
(answers echo the last user message; usage is counted; ``stream: true`` gets SSE with a usage chunk)
and lets a test queue failures with :meth:`LoopbackServer.push`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LoopbackServer", "RecordedRequest", "Reply", "openai_chat_reply", "openai_wire_server"]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """What the server answers. ``chunks`` (if given) are written one by one, flushed, ``chunk_delay`` apart."""

    status: int = 200
    body: bytes | str | Mapping[str, Any] | list[Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes | str] | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    drop: bool = False  # close the connection without answering
    truncate_to: int | None = None  # send a Content-Length larger than the body actually sent

    def body_bytes(self) -> bytes:
        b = self.body
        if isinstance(b, (dict, list)):
            return json.dumps(b).encode()
        if isinstance(b, str):
            return b.encode()
        return bytes(b)  # type: ignore[arg-type]


Handler = Callable[[RecordedRequest], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up first (a timeout test, a cancelled stream) is expected here.
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """``with LoopbackServer(handler) as srv: LM(..., base_url=srv.url)``."""

    def __init__(self, handler: Handler | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler: Handler = handler or (lambda req: Reply(404, {"error": "no handler"}))
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                req = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.requests.append(req)
                    queued = outer._queue.popleft() if outer._queue else None
                reply = queued if queued is not None else outer.handler(req)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.chunks is not None:
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for chunk in reply.chunks:
                        data = chunk.encode() if isinstance(chunk, str) else chunk
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                        if reply.chunk_delay:
                            time.sleep(reply.chunk_delay)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                data = reply.body_bytes()
                if reply.truncate_to is not None:
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: reply.truncate_to])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = _Server((host, port), H)
        self.host: str = str(self._server.server_address[0])
        self.port: int = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def push(self, *replies: Reply) -> None:
        """Queue replies served, in order, before the handler is asked again."""
        with self._lock:
            self._queue.extend(replies)

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _count(text: str) -> int:
    return len(text.split())


def _as_text(content: Any) -> str:
    """A message's content as text: a string as it is; content parts as their text, and every other
    part as ``[<type>]`` (so a test sees which parts arrived)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) if p.get("type") == "text" else f"[{p.get('type')}]"
            for p in content
            if isinstance(p, dict)
        )
    return ""


def openai_chat_reply(req: RecordedRequest) -> Reply:
    """The default OpenAI-wire behaviour: echo the last user message, with usage; SSE when asked."""
    if req.method == "GET" and req.path.rstrip("/").endswith("/models"):
        return Reply(200, {"object": "list", "data": [{"id": "loopback-model", "object": "model", "owned_by": "dsrs"}]})
    if not req.path.rstrip("/").endswith("/chat/completions"):
        return Reply(404, {"error": {"message": f"no route {req.path}", "type": "invalid_request_error", "code": None}})
    body = req.json() or {}
    users = [_as_text(m.get("content")) for m in body.get("messages", []) if m.get("role") == "user"]
    text = users[-1] if users else ""
    prompt = sum(_count(_as_text(m.get("content"))) for m in body.get("messages", []))
    usage = {"prompt_tokens": prompt, "completion_tokens": _count(text), "total_tokens": prompt + _count(text)}
    model = body.get("model", "loopback-model")
    if body.get("stream"):
        words = text.split(" ")
        events = []
        for i, w in enumerate(words):
            piece = w if i == 0 else " " + w
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            events.append(f"data: {json.dumps(chunk)}\n\n")
        events.append(
            "data: "
            + json.dumps(
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
            )
            + "\n\n"
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                "data: "
                + json.dumps(
                    {"id": "c1", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage}
                )
                + "\n\n"
            )
        events.append("data: [DONE]\n\n")
        return Reply(200, headers={"content-type": "text/event-stream"}, chunks=events)
    return Reply(
        200,
        {
            "id": "chatcmpl-loopback",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        },
        headers={"content-type": "application/json"},
    )


def openai_wire_server() -> LoopbackServer:
    """A loopback server speaking the OpenAI Chat Completions wire (not started)."""
    return LoopbackServer(openai_chat_reply)
