"""The streamed Messages API answer (SSE), sans-IO.

Event flow (https://docs.anthropic.com/en/docs/build-with-claude/streaming): ``message_start``
(a Message with empty content and the input usage), then per content block
``content_block_start`` / ``content_block_delta`` (``text_delta``, ``thinking_delta``,
``signature_delta``, ``input_json_delta``, ``citations_delta``) / ``content_block_stop``, then
``message_delta`` (``stop_reason`` and cumulative usage) and ``message_stop``. ``ping`` events may
come anywhere; an ``error`` event is a typed error. The reference says new event types may be added
and should be handled gracefully, so an unknown event type is skipped. A stream that ends before
``message_stop`` is a :class:`~dsrs.errors.ResponseParseError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dsrs.errors import LMError
from dsrs.types import LMRequest, LMResponse, StreamChunk
from dsrs.wire import SSEEvent
from dsrs_anthropic.response import bad, build_response, loads, usage_counts

__all__ = ["MessageStreamDecoder"]

#: Bounds on what one streamed answer may make this decoder hold (text, thinking, signatures and
#: tool input, in characters; content blocks): far above any real answer (128k output tokens are
#: about 0.5M characters), far below a memory problem.
MAX_STREAM_CHARS = 32 * 1024 * 1024
MAX_STREAM_BLOCKS = 4096

#: Builds the typed error for an ``error`` event (the provider's ``failure``: hooks, codec, secrets).
FailureFactory = Callable[[LMRequest, str, str, bytes], LMError]


class MessageStreamDecoder:
    """Feeds SSE events of one streamed answer; :meth:`finish` gives the whole :class:`LMResponse`."""

    def __init__(self, request: LMRequest, *, forced_tool: str | None, failure: FailureFactory) -> None:
        self.request = request
        self.forced_tool = forced_tool
        self._failure = failure
        self._started = False
        self._stopped = False
        self._model: str | None = request.model
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, list[str]] = {}
        self._pieces: dict[tuple[int, str], list[str]] = {}  # joined once, in finish (linear)
        self._held = 0
        self._forced: set[int] = set()
        self._usage: dict[str, Any] = {}
        self._stop_reason: Any = None

    def _block(self, obj: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        index = obj.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or index not in self._blocks:
            raise bad(self.request, f"{obj.get('type')} for a content block that was not started (index {index!r})")
        return index, self._blocks[index]

    def feed(self, event: SSEEvent) -> StreamChunk | None:
        try:
            obj = loads(event.data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise bad(self.request, "malformed stream event (not JSON)", event.data) from None
        if not isinstance(obj, dict):
            raise bad(self.request, f"stream event must be an object, got {type(obj).__name__}", event.data)
        kind = obj.get("type", event.event)
        if kind == "error":
            raw = obj.get("error")
            err: dict[str, Any] = raw if isinstance(raw, dict) else {}
            code, message = err.get("type"), err.get("message")
            code = code if isinstance(code, str) and code else "api_error"
            message = message if isinstance(message, str) and message else "error event in stream"
            raise self._failure(self.request, code, message, event.data.encode("utf-8", "replace"))
        if kind == "ping":
            return None
        if kind == "message_start":
            message = obj.get("message")
            if not isinstance(message, dict):
                raise bad(self.request, "message_start without a message object", event.data)
            model = message.get("model")
            if isinstance(model, str) and model:
                self._model = model
            self._merge_usage(message.get("usage"))
            self._started = True
            return None
        if not self._started and kind in (
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ):
            raise bad(self.request, f"{kind} before message_start", event.data)
        if kind == "content_block_start":
            index = obj.get("index")
            block = obj.get("content_block")
            if isinstance(index, bool) or not isinstance(index, int) or not isinstance(block, dict):
                raise bad(self.request, "content_block_start needs an int index and a content_block object", event.data)
            if index not in self._blocks and len(self._blocks) >= MAX_STREAM_BLOCKS:
                raise bad(self.request, f"more than MAX_STREAM_BLOCKS={MAX_STREAM_BLOCKS} content blocks in one answer")
            block = dict(block)
            if block.get("type") == "tool_use" and block.get("name") == self.forced_tool and self.forced_tool:
                # The forced output tool's input is the answer: streamed as text, as it arrives.
                block = {"type": "text", "text": "", "forced": True}
                self._forced.add(index)
            elif block.get("type") == "tool_use":
                block["input"] = {}
                self._json[index] = []
            self._blocks[index] = block
            return None
        if kind == "content_block_delta":
            return self._delta(obj, event.data)
        if kind == "content_block_stop":
            index, block = self._block(obj)
            if index in self._json:
                raw = "".join(self._json.pop(index))
                try:
                    block["input"] = loads(raw) if raw.strip() else {}
                except json.JSONDecodeError:
                    raise bad(self.request, f"tool_use input of block {index} is not JSON", raw[:200]) from None
            return None
        if kind == "message_delta":
            delta = obj.get("delta")
            if not isinstance(delta, dict):
                raise bad(self.request, "message_delta without a delta object", event.data)
            if "stop_reason" in delta:
                self._stop_reason = delta["stop_reason"]
            self._merge_usage(obj.get("usage"))
            return None
        if kind == "message_stop":
            self._stopped = True
            return None
        return None  # an event type added after this decoder: skipped, as the reference asks

    def _hold(self, index: int, key: str, piece: str) -> None:
        self._held += len(piece)
        if self._held > MAX_STREAM_CHARS:
            raise bad(self.request, f"the streamed answer exceeds MAX_STREAM_CHARS={MAX_STREAM_CHARS} characters")
        pieces = self._pieces.get((index, key))
        if pieces is None:
            self._pieces[(index, key)] = [piece]
        else:
            pieces.append(piece)

    def _delta(self, obj: dict[str, Any], data: str) -> StreamChunk | None:
        index, _ = self._block(obj)
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            raise bad(self.request, "content_block_delta without a delta object", data)
        dtype = delta.get("type")
        if dtype == "text_delta":
            text = delta.get("text")
            if not isinstance(text, str):
                raise bad(self.request, "text_delta.text must be a string", data)
            self._hold(index, "text", text)
            return StreamChunk(text=text) if text else None
        if dtype == "thinking_delta":
            thinking = delta.get("thinking")
            if not isinstance(thinking, str):
                raise bad(self.request, "thinking_delta.thinking must be a string", data)
            self._hold(index, "thinking", thinking)
            return StreamChunk(reasoning=thinking) if thinking else None
        if dtype == "signature_delta":
            signature = delta.get("signature")
            if not isinstance(signature, str):
                raise bad(self.request, "signature_delta.signature must be a string", data)
            self._hold(index, "signature", signature)
            return None
        if dtype == "input_json_delta":
            partial = delta.get("partial_json")
            if not isinstance(partial, str) or (index not in self._json and index not in self._forced):
                raise bad(self.request, "input_json_delta needs a tool_use block and a string partial_json", data)
            if index in self._forced:
                self._hold(index, "text", partial)
                return StreamChunk(text=partial) if partial else None
            self._held += len(partial)
            if self._held > MAX_STREAM_CHARS:
                raise bad(self.request, f"the streamed answer exceeds MAX_STREAM_CHARS={MAX_STREAM_CHARS} characters")
            self._json[index].append(partial)
            return None
        return None  # citations_delta and later delta types carry nothing dsrs keeps

    def _merge_usage(self, usage: Any) -> None:
        # message_delta's usage is cumulative (it may repeat the input counts): later values win.
        counts = usage_counts(usage, self.request)
        self._usage.update(counts)

    def finish(self) -> LMResponse:
        if not self._stopped:
            raise bad(self.request, "the stream ended before message_stop (the answer is incomplete)")
        if self._json:
            raise bad(self.request, "the stream stopped inside a tool_use block")
        for (index, key), pieces in self._pieces.items():
            block = self._blocks[index]
            start = block.get(key)
            block[key] = (start if isinstance(start, str) else "") + "".join(pieces)
        content = [self._blocks[i] for i in sorted(self._blocks)]
        for block in content:
            block.pop("forced", None)
            if block.get("type") == "text":
                block.setdefault("text", "")
            elif block.get("type") == "thinking":
                block.setdefault("thinking", "")
                block.setdefault("signature", "")
        raw_usage = {k: v for k, v in self._usage.items() if not k.startswith("ephemeral_")}
        return build_response(
            self.request,
            content=content,
            stop_reason=self._stop_reason,
            counts=self._usage,
            raw_usage=raw_usage,
            model=self._model,
            forced_tool=self.forced_tool,
        )
