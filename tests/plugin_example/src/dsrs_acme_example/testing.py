"""A loopback server speaking the Acme chat wire, for tests (needs pytest, through dsrs.testing).

:class:`AcmeWire` answers ``POST /v2/chat`` by echoing the last user text, with token counts;
``"stream": true`` gets the named SSE events of the wire; ``GET /v2/models`` lists the models. It
checks the ``Authorization: Bearer`` key. :func:`error_reply` and :func:`stream_reply` script the
wire's errors and streams for error tables (queue them with :meth:`LoopbackServer.push`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dsrs.testing import LoopbackServer, RecordedRequest, Reply

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream", "cache-control": "no-cache"}


def error_reply(status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """An error answer of the wire: ``{"id": ..., "message": ..., "code": ...}``."""
    body: dict[str, Any] = {"id": "err-1", "message": message}
    if code is not None:
        body["code"] = code
    return Reply(status, body, {**JSON, **(headers or {})})


def sse(event: str, data: Mapping[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n"


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    counts = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return {"billed_units": counts, "tokens": counts}


def answer(text: str, input_tokens: int, *, thinking: str | None = None) -> dict[str, Any]:
    """A whole (non-streamed) answer."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if thinking:
        content.insert(0, {"type": "thinking", "thinking": thinking})
    return {
        "id": "gen-1",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": content},
        "usage": usage(input_tokens, len(text.split())),
    }


def stream_events(text: str, input_tokens: int, *, end: bool = True) -> list[str]:
    """The events of a streamed answer, one word a ``content-delta``; ``end=False`` leaves out
    ``message-end`` (a connection cut before the answer finished)."""
    events = [sse("message-start", {"id": "gen-1", "delta": {"message": {"role": "assistant"}}})]
    for i, word in enumerate(text.split(" ")):
        piece = word if i == 0 else " " + word
        events.append(sse("content-delta", {"index": 0, "delta": {"message": {"content": {"text": piece}}}}))
    if end:
        done = {"finish_reason": "COMPLETE", "usage": usage(input_tokens, len(text.split()))}
        events.append(sse("message-end", {"delta": done}))
    return events


def stream_reply(events: Iterable[str]) -> Reply:
    return Reply(200, chunks=list(events), headers=SSE)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    return " ".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text")


class AcmeWire:
    """The request handler. ``api_keys`` (when given) are the keys it accepts."""

    def __init__(self, models: Iterable[str] = ("acme-large", "acme-small"), api_keys: Iterable[str] | None = None):
        self.models = list(models)
        self.api_keys = set(api_keys) if api_keys is not None else None

    def __call__(self, req: RecordedRequest) -> Reply:
        scheme, _, key = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key or (self.api_keys is not None and key not in self.api_keys):
            return error_reply(401, "invalid_api_key", "invalid api token")
        path = req.path.partition("?")[0].rstrip("/")
        if req.method == "GET" and path == "/v2/models":
            return Reply(200, {"models": [{"name": m, "endpoints": ["chat"]} for m in self.models]}, JSON)
        if req.method != "POST" or path != "/v2/chat":
            return error_reply(404, None, f"no route {req.method} {path}")
        try:
            body = json.loads(req.body)
        except ValueError:
            return error_reply(400, None, "invalid JSON body")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return error_reply(400, None, "messages is required")
        if body.get("model") not in self.models:
            return error_reply(404, "model_not_found", f"model {body.get('model')!r} not found")
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        text = users[-1] if users else ""
        prompt = sum(len(_text(m.get("content")).split()) for m in messages)
        if body.get("response_format"):
            text = json.dumps({"answer": text})
        if body.get("stream"):
            return stream_reply(stream_events(text, prompt))
        return Reply(200, answer(text, prompt), JSON)


@contextmanager
def acme_wire_server(api_keys: Iterable[str] | None = None) -> Iterator[LoopbackServer]:
    """``with acme_wire_server() as srv: LM("acme-large", base_url=srv.url, api_key=...)``."""
    with LoopbackServer(AcmeWire(api_keys=api_keys)) as srv:
        yield srv
