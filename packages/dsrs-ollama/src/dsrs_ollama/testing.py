"""A loopback server speaking Ollama's documented API, for tests (needs pytest, via dsrs.testing).

No Ollama server runs in CI, so tests of this package (and of packages that use Ollama as a
backend, such as dsrs-pylon's local mode) talk to :func:`ollama_wire_server`: real sockets on
127.0.0.1, answers shaped as in Ollama's ``docs/api.md`` ("Generate a chat completion", "List
Local Models") and docs.ollama.com/api/errors.

* ``GET /api/tags`` lists the server's models;
* ``POST /api/chat`` echoes the last user message — NDJSON chunks unless ``"stream": false``
  (Ollama streams by default), a final ``done: true`` object with counts and durations;
  ``format`` gets a JSON answer (an instance of the schema), ``tools`` a tool call;
* an unknown model gets the documented 404 ``{"error": "model \\"x\\" not found, try pulling it first"}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from dsrs.testing import LoopbackServer, RecordedRequest, Reply, example_instance

__all__ = ["OllamaWire", "example_instance", "ollama_wire_server"]

CREATED_AT = "2023-12-12T14:13:43.416799Z"


def _count(text: str) -> int:
    return len(text.split())


class OllamaWire:
    """The request handler; ``models`` are the pulled models (``name:tag``)."""

    def __init__(self, models: Iterable[str] = ("llama2:latest", "llama3.2:latest")) -> None:
        self.models = list(models)

    def has(self, model: str) -> bool:
        name = model if ":" in model else f"{model}:latest"
        return name in self.models

    def __call__(self, req: RecordedRequest) -> Reply:
        path = req.path.split("?", 1)[0].rstrip("/")
        if req.method == "GET" and path == "/api/tags":
            return Reply(200, {"models": [self._tag(m) for m in self.models]}, {"content-type": "application/json"})
        if path != "/api/chat":
            return Reply(404, "404 page not found", {"content-type": "text/plain"})
        try:
            body = json.loads(req.body)
        except json.JSONDecodeError as exc:
            return Reply(400, {"error": str(exc)}, {"content-type": "application/json"})
        model = str(body.get("model") or "")
        if not model:
            return Reply(400, {"error": "model is required"}, {"content-type": "application/json"})
        if not self.has(model):
            return Reply(
                404, {"error": f'model "{model}" not found, try pulling it first'}, {"content-type": "application/json"}
            )
        return self.chat(body)

    @staticmethod
    def _tag(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": "2023-12-07T09:32:18.757212583-08:00",
            "size": 3825819519,
            "digest": "fe938a131f40e6f6d40083c9f0f430a515233eb2edaa6d72eb85c50d64f2300e",
            "details": {
                "format": "gguf",
                "family": "llama",
                "families": None,
                "parameter_size": "7B",
                "quantization_level": "Q4_0",
            },
        }

    def answer(self, body: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        tools = body.get("tools") or []
        if tools and last.get("role") == "user":
            fn = tools[0]["function"]
            return "", [{"function": {"name": fn["name"], "arguments": example_instance(fn.get("parameters") or {})}}]
        if last.get("role") == "tool":
            return f"tool said: {last.get('content', '')}", []
        users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
        text = users[-1] if users else ""
        fmt = body.get("format")
        if isinstance(fmt, dict):
            return json.dumps(example_instance(fmt)), []
        if fmt == "json":
            return json.dumps({"answer": text}), []
        return text, []

    def chat(self, body: Mapping[str, Any]) -> Reply:
        text, calls = self.answer(body)
        model = body["model"]
        options = body.get("options") or {}
        limit = options.get("num_predict")
        done_reason = "stop"
        if isinstance(limit, int) and limit >= 0 and _count(text) > limit and not calls:
            text, done_reason = " ".join(text.split()[:limit]), "length"
        prompt = sum(_count(str(m.get("content") or "")) for m in body.get("messages") or [])
        final = {
            "model": model,
            "created_at": CREATED_AT,
            "done": True,
            "done_reason": done_reason,
            "total_duration": 4883583458,
            "load_duration": 1334875,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": 342546000,
            "eval_count": max(_count(text), 1),
            "eval_duration": 4535599000,
        }
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
        if body.get("stream", True) is False:
            return Reply(
                200,
                {"model": model, "created_at": CREATED_AT, "message": message, **final},
                {"content-type": "application/json"},
            )
        lines = []
        words = text.split(" ") if text else []
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            lines.append(
                {
                    "model": model,
                    "created_at": CREATED_AT,
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
            )
        if calls:
            lines.append(
                {
                    "model": model,
                    "created_at": CREATED_AT,
                    "message": {"role": "assistant", "content": "", "tool_calls": calls},
                    "done": False,
                }
            )
        lines.append({**final, "message": {"role": "assistant", "content": ""}})
        return Reply(
            200, headers={"content-type": "application/x-ndjson"}, chunks=[json.dumps(x) + "\n" for x in lines]
        )


def ollama_wire_server(models: Iterable[str] = ("llama2:latest", "llama3.2:latest")) -> LoopbackServer:
    """A loopback server speaking Ollama's API (not started; use it as a context manager)."""
    return LoopbackServer(OllamaWire(models))
