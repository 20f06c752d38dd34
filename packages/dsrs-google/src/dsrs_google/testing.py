"""A loopback server speaking the Gemini API wire, for tests (needs pytest, via dsrs.testing).

The real Gemini API cannot be reached from tests, so :func:`gemini_wire_server` answers on
127.0.0.1 with bodies shaped as in the Gemini API reference (``GenerateContentResponse`` with
``candidates``, ``usageMetadata``, ``modelVersion``; ``streamGenerateContent?alt=sse`` as SSE events
separated by CRLF CRLF; ``models.list``) and its documented errors (an unknown key is a 400
``INVALID_ARGUMENT`` with ``ErrorInfo`` reason ``API_KEY_INVALID``; an unknown model a 404
``NOT_FOUND``). It echoes the last user text; JSON schemas get an instance, function declarations
a ``functionCall``, and ``includeThoughts`` a thought part.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from dsrs.testing import LoopbackServer, RecordedRequest, Reply, example_instance

__all__ = ["GeminiWire", "api_key_invalid", "example_instance", "gemini_wire_server", "not_found"]

JSON = {"content-type": "application/json; charset=UTF-8"}


def api_key_invalid() -> Reply:
    """The documented answer to a bad key (400 INVALID_ARGUMENT, ErrorInfo API_KEY_INVALID)."""
    return Reply(
        400,
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            }
        },
        JSON,
    )


def not_found(model: str, method: str = "generateContent") -> Reply:
    return Reply(
        404,
        {
            "error": {
                "code": 404,
                "message": f"models/{model} is not found for API version v1beta, or is not supported for {method}. "
                "Call ListModels to see the list of available models and their supported methods.",
                "status": "NOT_FOUND",
            }
        },
        JSON,
    )


def _count(text: str) -> int:
    return len(text.split())


class GeminiWire:
    """The request handler. ``models`` are served; ``api_keys`` (when given) are the accepted keys."""

    def __init__(
        self,
        models: Iterable[str] = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-pro", "gemini-1.5-flash"),
        api_keys: Iterable[str] | None = None,
    ) -> None:
        self.models = list(models)
        self.api_keys = set(api_keys) if api_keys is not None else None

    def __call__(self, req: RecordedRequest) -> Reply:
        path, _, query = req.path.partition("?")
        key = req.headers.get("x-goog-api-key", "")
        if not key or (self.api_keys is not None and key not in self.api_keys):
            return api_key_invalid()
        if req.method == "GET" and path.rstrip("/").endswith("/models"):
            return Reply(
                200,
                {
                    "models": [
                        {
                            "name": f"models/{m}",
                            "displayName": m,
                            "inputTokenLimit": 1048576,
                            "outputTokenLimit": 65536,
                            "supportedGenerationMethods": ["generateContent", "countTokens"],
                        }
                        for m in self.models
                    ],
                    "nextPageToken": "next",
                },
                JSON,
            )
        name, _, method = unquote(path).rpartition(":")
        model = name.rsplit("models/", 1)[-1]
        if req.method != "POST" or method not in ("generateContent", "streamGenerateContent"):
            return Reply(404, "<html><body>Not Found</body></html>", {"content-type": "text/html"})
        if model not in self.models:
            return not_found(model, method)
        try:
            body = json.loads(req.body)
        except json.JSONDecodeError:
            return Reply(
                400,
                {"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}},
                JSON,
            )
        stream = method == "streamGenerateContent" and "alt=sse" in query
        return self.generate(model, body, stream=stream)

    def answer(self, body: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        contents = body.get("contents") or []
        last_parts = (contents[-1].get("parts") or []) if contents else []
        declarations = [d for t in body.get("tools") or () for d in t.get("functionDeclarations") or ()]
        if last_parts and "functionResponse" in last_parts[-1]:
            response = last_parts[-1]["functionResponse"].get("response")
            return f"tool said: {json.dumps(response, sort_keys=True)}", []
        if declarations:
            fn = declarations[0]
            params = fn.get("parametersJsonSchema") or fn.get("parameters") or {}
            return "", [{"functionCall": {"name": fn["name"], "args": example_instance(params)}}]
        users = [p.get("text", "") for c in contents if c.get("role", "user") == "user" for p in c.get("parts") or ()]
        text = users[-1] if users else ""
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if schema:
            return json.dumps(example_instance(schema)), []
        if config.get("responseMimeType") == "application/json":
            return json.dumps({"answer": text}), []
        return text, []

    def generate(self, model: str, body: Mapping[str, Any], *, stream: bool) -> Reply:
        text, calls = self.answer(body)
        config = body.get("generationConfig") or {}
        limit = config.get("maxOutputTokens")
        finish = "STOP"
        if isinstance(limit, int) and not calls and _count(text) > limit:
            text, finish = " ".join(text.split()[:limit]), "MAX_TOKENS"
        thinking = bool((config.get("thinkingConfig") or {}).get("includeThoughts"))
        thought = "Let me think about that." if thinking else ""
        prompt = sum(_count(p.get("text", "")) for c in body.get("contents") or () for p in c.get("parts") or ())
        prompt += sum(_count(p.get("text", "")) for p in (body.get("systemInstruction") or {}).get("parts") or ())
        candidates_tokens = max(_count(text), 1)
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": prompt + candidates_tokens + _count(thought),
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if thought:
            usage["thoughtsTokenCount"] = _count(thought)
        meta = {"modelVersion": model, "responseId": "mAitaJvVJb2A1MkP2JvR8Ag"}
        if not stream:
            parts: list[dict[str, Any]] = [{"text": thought, "thought": True}] if thought else []
            parts += [{"text": text}] if text or not calls else []
            parts += calls
            candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}
            return Reply(200, {"candidates": [candidate], "usageMetadata": usage, **meta}, JSON)
        events: list[dict[str, Any]] = []
        running = {
            "promptTokenCount": prompt,
            "totalTokenCount": prompt,
            "promptTokensDetails": usage["promptTokensDetails"],
        }
        if thought:
            events.append(
                {
                    "candidates": [
                        {"content": {"parts": [{"text": thought, "thought": True}], "role": "model"}, "index": 0}
                    ]
                }
            )
        words = text.split(" ") if text else []
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            events.append({"candidates": [{"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}]})
        if calls:
            events.append({"candidates": [{"content": {"parts": calls, "role": "model"}, "index": 0}]})
        if not events:
            events.append({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "index": 0}]})
        for event in events:
            event.update(usageMetadata=running, **meta)
        events[-1]["candidates"][0]["finishReason"] = finish
        events[-1]["usageMetadata"] = usage
        return Reply(
            200,
            headers={"content-type": "text/event-stream"},
            chunks=[f"data: {json.dumps(e)}\r\n\r\n" for e in events],
        )


def gemini_wire_server(
    models: Iterable[str] = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-pro", "gemini-1.5-flash"),
    api_keys: Iterable[str] | None = None,
) -> LoopbackServer:
    """A loopback server speaking the Gemini API (not started; use it as a context manager).

    Point an LM at it with ``base_url=srv.url`` (``/v1beta`` is added) or ``GEMINI_BASE_URL``.
    """
    return LoopbackServer(GeminiWire(models, api_keys))
