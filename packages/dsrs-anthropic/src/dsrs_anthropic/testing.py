"""A loopback server speaking the Anthropic Messages API wire, for tests (needs pytest, via dsrs.testing).

The real API cannot be reached from tests, so :func:`anthropic_wire_server` answers on 127.0.0.1
with bodies shaped as in the API reference (https://docs.anthropic.com/en/api/messages: a
``Message`` with ``content`` blocks, ``stop_reason``, ``stop_sequence`` and ``usage``; streaming as
named SSE events, https://docs.anthropic.com/en/docs/build-with-claude/streaming; ``GET /v1/models``,
https://docs.anthropic.com/en/api/models-list) and its documented errors
(https://docs.anthropic.com/en/api/errors). It checks what the API checks and a client can get
wrong: ``x-api-key`` and ``anthropic-version``, a required ``max_tokens``, only ``user`` and
``assistant`` roles, ``tool_result`` blocks answering a ``tool_use`` id, image and document
sources, and — with extended thinking — that a tool turn sends its signed thinking block back
unmodified. It echoes the last user text (naming the images and documents it got); tools get a
``tool_use`` with an instance of their schema; ``output_config.format`` a JSON instance; prompt
caching is simulated per ``cache_control`` prefix (written on first sight, read after).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from dsrs.testing import LoopbackServer, RecordedRequest, Reply, example_instance

__all__ = ["AnthropicWire", "anthropic_wire_server", "error_reply", "sse", "transcript"]

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_SIGNING_KEY = b"loopback-signing-key"


def error_reply(status: int, etype: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """An error answer as the API sends it: ``{"type": "error", "error": {...}, "request_id": ...}``."""
    body = {"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
    return Reply(status, body, {**JSON, "request-id": "req_011CSHoEeqs5C35K2UUqR7Fy", **(headers or {})})


def sign(thinking: str) -> str:
    """The loopback's signature of a thinking text (the real one is opaque; this one is checkable)."""
    return base64.b64encode(hashlib.sha256(_SIGNING_KEY + thinking.encode()).digest()).decode()


def sse(event: str, data: Mapping[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _words(text: str) -> int:
    return len(text.split())


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return _words(block)
    if not isinstance(block, Mapping):
        return 0
    kind = block.get("type")
    if kind == "text":
        return _words(str(block.get("text", "")))
    if kind in ("image", "document"):
        return 100  # a flat figure: what matters here is that media counts as input
    if kind == "tool_use":
        return _words(json.dumps(block.get("input")))
    if kind == "tool_result":
        return sum(_block_tokens(b) for b in _as_blocks(block.get("content")))
    if kind == "thinking":
        return _words(str(block.get("thinking", "")))
    return 1


def _as_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b if isinstance(b, dict) else {"type": repr(b)} for b in content] if isinstance(content, list) else []


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class _Invalid(Exception):
    pass


class AnthropicWire:
    """The request handler. ``models`` are served; ``api_keys`` (when given) are the accepted keys."""

    def __init__(
        self,
        models: Iterable[str] = (
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
            "claude-opus-4-1",
            "claude-3-5-haiku-20241022",
        ),
        api_keys: Iterable[str] | None = None,
    ) -> None:
        self.models = list(models)
        self.api_keys = set(api_keys) if api_keys is not None else None
        self._cache: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, req: RecordedRequest) -> Reply:
        path, _, query = req.path.partition("?")
        path = path.rstrip("/")
        key = req.headers.get("x-api-key", "")
        if not key or (self.api_keys is not None and key not in self.api_keys):
            return error_reply(401, "authentication_error", "invalid x-api-key")
        if not req.headers.get("anthropic-version"):
            return error_reply(400, "invalid_request_error", "anthropic-version: header is required")
        if req.method == "GET" and path == "/v1/models":
            return self.list_models(parse_qs(query))
        if req.method != "POST" or path != "/v1/messages":
            return error_reply(404, "not_found_error", f"Not found: {req.method} {path}")
        try:
            body = json.loads(req.body)
        except json.JSONDecodeError:
            return error_reply(400, "invalid_request_error", "There was an error parsing the body of your request.")
        if not isinstance(body, dict):
            return error_reply(400, "invalid_request_error", "The request body is not valid JSON.")
        if body.get("model") not in self.models:
            return error_reply(404, "not_found_error", f"model: {body.get('model')}")
        try:
            self.validate(body)
        except _Invalid as exc:
            return error_reply(400, "invalid_request_error", str(exc))
        return self.answer(body, stream=body.get("stream") is True)

    def list_models(self, query: Mapping[str, list[str]]) -> Reply:
        """A page of the models list (``limit``, default 20; ``after_id``), newest first."""
        limit = int((query.get("limit") or ["20"])[0])
        after = (query.get("after_id") or [""])[0]
        start = self.models.index(after) + 1 if after in self.models else 0
        page = self.models[start : start + limit]
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"} for m in page]
        body = {
            "data": data,
            "has_more": start + limit < len(self.models),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
        return Reply(200, body, JSON)

    # --- request checks (what the API refuses) --------------------------------------------------

    def validate(self, body: Mapping[str, Any]) -> None:
        mt = body.get("max_tokens")
        if isinstance(mt, bool) or not isinstance(mt, int):
            raise _Invalid(
                "max_tokens: Field required" if mt is None else "max_tokens: Input should be a valid integer"
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Invalid("messages: at least one message is required")
        thinking = _obj(body.get("thinking"))
        enabled = thinking.get("type") == "enabled"
        if enabled and not (isinstance(thinking.get("budget_tokens"), int) and 1024 <= thinking["budget_tokens"] < mt):
            raise _Invalid("thinking.budget_tokens: must be >= 1024 and less than max_tokens")
        open_calls: set[str] = set()
        for i, m in enumerate(messages):
            role = m.get("role") if isinstance(m, Mapping) else None
            if role not in ("user", "assistant"):
                raise _Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            blocks = _as_blocks(m.get("content"))
            for j, b in enumerate(blocks):
                self._check_block(b, f"messages.{i}.content.{j}")
            if role == "assistant":
                uses = [b for b in blocks if b.get("type") == "tool_use"]
                if uses and enabled:
                    first = blocks[0]
                    if first.get("type") not in ("thinking", "redacted_thinking"):
                        raise _Invalid(
                            f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                            f"`{first.get('type')}`. When `thinking` is enabled, a final `assistant` message must "
                            "start with a thinking block."
                        )
                open_calls = {str(b.get("id")) for b in uses}
            else:
                for b in blocks:
                    if b.get("type") == "tool_result" and b.get("tool_use_id") not in open_calls:
                        raise _Invalid(
                            f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{b.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                            "`tool_use` block in the previous message."
                        )
                open_calls = set()
        system = body.get("system")
        if system is not None and not isinstance(system, (str, list)):
            raise _Invalid("system: Input should be a valid string or list of text blocks")

    def _check_block(self, b: Any, where: str) -> None:
        if not isinstance(b, Mapping):
            raise _Invalid(f"{where}: Input should be a valid dictionary")
        kind = b.get("type")
        if kind in ("image", "document"):
            src = _obj(b.get("source"))
            stype = src.get("type")
            if stype == "base64":
                ok = src.get("media_type") in (_IMAGE_TYPES if kind == "image" else ("application/pdf",))
                if not ok:
                    raise _Invalid(f"{where}.source.media_type: unsupported {src.get('media_type')!r}")
                try:
                    base64.b64decode(str(src.get("data")), validate=True)
                except (binascii.Error, ValueError):
                    raise _Invalid(f"{where}.source.data: invalid base64") from None
            elif stype == "url":
                if not str(src.get("url", "")).startswith(("http://", "https://")):
                    raise _Invalid(f"{where}.source.url: must be http(s)")
            elif not (kind == "document" and stype == "text" and isinstance(src.get("data"), str)):
                raise _Invalid(f"{where}.source.type: unsupported {stype!r}")
        elif kind == "thinking":
            if b.get("signature") != sign(str(b.get("thinking", ""))):
                raise _Invalid(f"{where}: Invalid `signature` in `thinking` block")
        elif kind not in ("text", "tool_use", "tool_result", "redacted_thinking"):
            raise _Invalid(f"{where}.type: unknown content block type {kind!r}")

    # --- answers ----------------------------------------------------------------------------------

    def _cache_usage(self, body: Mapping[str, Any]) -> tuple[int, int, int]:
        """``(uncached, cache_write, cache_read)`` input tokens: the prompt up to the last
        ``cache_control`` breakpoint is written on first sight and read afterwards."""
        seq: list[Any] = []
        system = body.get("system")
        seq += _as_blocks(system) if system is not None else []
        for m in body.get("messages") or ():
            seq += _as_blocks(m.get("content"))
        for t in body.get("tools") or ():
            seq.append({"type": "text", "text": json.dumps(t)})
        cut = max((i + 1 for i, b in enumerate(seq) if isinstance(b, Mapping) and b.get("cache_control")), default=0)
        total = sum(_block_tokens(b) for b in seq)
        if not cut:
            return total, 0, 0
        prefix = sum(_block_tokens(b) for b in seq[:cut])
        digest = hashlib.sha256(json.dumps(seq[:cut], sort_keys=True).encode()).hexdigest()
        with self._lock:
            seen = digest in self._cache
            self._cache.add(digest)
        return (total - prefix, 0, prefix) if seen else (total - prefix, prefix, 0)

    def content(self, body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """The answer's content blocks and stop reason (before max_tokens/stop_sequences apply)."""
        messages = body.get("messages") or []
        last = _as_blocks(messages[-1].get("content")) if messages else []
        tools = [t for t in body.get("tools") or () if isinstance(t, Mapping)]
        choice = _obj(body.get("tool_choice"))
        thinking_on = (body.get("thinking") or {}).get("type") == "enabled"
        blocks: list[dict[str, Any]] = []
        if thinking_on:
            thought = "Let me think step by step about this."
            blocks.append({"type": "thinking", "thinking": thought, "signature": sign(thought)})
        results = [b for b in last if b.get("type") == "tool_result"]
        fmt = (body.get("output_config") or {}).get("format")
        if results:
            said = []
            for r in results:
                content = r.get("content")
                said.append(
                    content if isinstance(content, str) else " ".join(_block_text(b) for b in _as_blocks(content))
                )
            blocks.append({"type": "text", "text": "tool said: " + "; ".join(said)})
            return blocks, "end_turn"
        if tools and choice.get("type") != "none":
            tool = next((t for t in tools if t.get("name") == choice.get("name")), tools[0])
            args = example_instance(tool.get("input_schema") or {"type": "object"})
            blocks.append(
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": tool["name"], "input": args}
            )
            return blocks, "tool_use"
        if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
            blocks.append({"type": "text", "text": json.dumps(example_instance(fmt.get("schema") or {}))})
            return blocks, "end_turn"
        media = [
            f"{b['type']} ({(b.get('source') or {}).get('media_type') or (b.get('source') or {}).get('type')})"
            for b in last
            if b.get("type") in ("image", "document")
        ]
        text = " ".join(_block_text(b) for b in last if b.get("type") == "text")
        if media:
            text = f"I see: {', '.join(media)}. {text}".strip()
        blocks.append({"type": "text", "text": text})
        return blocks, "end_turn"

    def answer(self, body: Mapping[str, Any], *, stream: bool) -> Reply:
        blocks, stop = self.content(body)
        stop_sequence = None
        limit = int(body["max_tokens"])
        for b in blocks:
            if b["type"] != "text":
                continue
            for s in body.get("stop_sequences") or ():
                if s and s in b["text"]:
                    b["text"], stop, stop_sequence = b["text"].split(s, 1)[0], "stop_sequence", s
                    break
            if _words(b["text"]) > limit:
                b["text"], stop = " ".join(b["text"].split()[:limit]), "max_tokens"
        uncached, written, read = self._cache_usage(body)
        output = max(sum(_block_tokens(b) for b in blocks), 1)
        usage: dict[str, Any] = {
            "input_tokens": uncached,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output,
            "service_tier": "standard",
        }
        message = {
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }
        if not stream:
            return Reply(200, message, {**JSON, "request-id": "req_loopback"})
        return Reply(200, headers=SSE, chunks=transcript(message))


def _block_text(b: Any) -> str:
    return str(b.get("text", "")) if isinstance(b, Mapping) else ""


def transcript(message: Mapping[str, Any], *, pieces: int = 3) -> list[str]:
    """The SSE events streaming ``message``, in the documented order, with ``ping`` events and every
    block split into deltas (text word by word, thinking and tool input JSON in ``pieces``)."""
    usage = dict(message["usage"])
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events = [sse("message_start", {"type": "message_start", "message": start}), sse("ping", {"type": "ping"})]
    for i, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            head: dict[str, Any] = {"type": "text", "text": ""}
            words = block["text"].split(" ")
            deltas = [{"type": "text_delta", "text": w if j == 0 else " " + w} for j, w in enumerate(words)]
        elif kind == "thinking":
            head = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _split(block["thinking"], pieces)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _split(raw, pieces)]
        else:
            head, deltas = dict(block), []
        events.append(sse("content_block_start", {"type": "content_block_start", "index": i, "content_block": head}))
        for d in deltas:
            events.append(sse("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}))
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        if i == 0:
            events.append(sse("ping", {"type": "ping"}))
    events.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


def _split(text: str, pieces: int) -> list[str]:
    if not text:
        return [""]
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


def anthropic_wire_server(
    models: Iterable[str] = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "claude-3-5-haiku-20241022"),
    api_keys: Iterable[str] | None = None,
) -> LoopbackServer:
    """A loopback server speaking the Anthropic Messages API (not started; use it as a context manager).

    Point an LM at it with ``base_url=srv.url`` or ``ANTHROPIC_BASE_URL``.
    """
    return LoopbackServer(AnthropicWire(models, api_keys))
