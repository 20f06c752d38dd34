"""Fixtures for the dsrs-dspy tests: real DSPy, dsrs over loopback servers speaking the OpenAI wire.

The loopback "model" answers in DSPy's ChatAdapter format from what it was sent (the question it
read in the user message, for the output fields the system message asked for), with usage counted
from the request, so the tests check what crossed the wire rather than canned text.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dsrs
from dsrs.plugins import hookimpl
from dsrs.testing import LoopbackServer, RecordedRequest, Reply, isolated_plugins

dspy = pytest.importorskip("dspy")

MODEL = "loopback-model"
#: The price table of the test "package": msats per prompt and per completion token.
PROMPT_MSATS, COMPLETION_MSATS = 3, 5

_FIELD = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n|\Z)", re.S)
_OUTPUTS = re.compile(r"Your output fields are:\n(.*?)\n(?:All interactions|\n)", re.S)
_OUTPUT_NAME = re.compile(r"\d+\. `(\w+)`")


def words(text: str) -> int:
    return len(text.split())


def answer_for(body: dict[str, Any]) -> str:
    """A ChatAdapter-formatted answer: every output field the system prompt names, filled from the
    question found in the last user message."""
    messages = body["messages"]
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    user = [m["content"] for m in messages if m["role"] == "user"][-1]
    inputs = dict(_FIELD.findall(user))
    block = _OUTPUTS.search(system)
    outputs = _OUTPUT_NAME.findall(block.group(1)) if block else ["answer"]
    question = inputs.get("question", "?")
    values = {"reasoning": f"thinking about {question}", "answer": f"answer to {question}"}
    parts = [f"[[ ## {name} ## ]]\n{values.get(name, name)}" for name in outputs]
    return "\n\n".join([*parts, "[[ ## completed ## ]]"])


def json_answer_for(body: dict[str, Any]) -> str:
    """What a model held to ``response_format`` answers: a JSON object with the schema's properties."""
    user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    question = dict(_FIELD.findall(user)).get("question", "?")
    fmt = body["response_format"]
    names = list(fmt["json_schema"]["schema"]["properties"]) if fmt["type"] == "json_schema" else ["answer"]
    values = {"reasoning": f"thinking about {question}", "answer": f"answer to {question}"}
    return json.dumps({name: values.get(name, name) for name in names})


def chat_reply(req: RecordedRequest) -> Reply:
    """OpenAI Chat Completions (https://platform.openai.com/docs/api-reference/chat/object)."""
    body = req.json()
    text = json_answer_for(body) if body.get("response_format") else answer_for(body)
    prompt = sum(words(m.get("content") or "") for m in body["messages"])
    usage = {"prompt_tokens": prompt, "completion_tokens": words(text), "total_tokens": prompt + words(text)}
    if body.get("stream"):
        chunks = []
        for piece in re.findall(r"\S+\s*", text):
            delta = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            chunks.append(f"data: {json.dumps({'id': 'c1', 'model': body['model'], **delta})}\n\n")
        done = {"id": "c1", "model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        chunks.append(f"data: {json.dumps(done)}\n\n")
        chunks.append(f"data: {json.dumps({'id': 'c1', 'model': body['model'], 'choices': [], 'usage': usage})}\n\n")
        chunks.append("data: [DONE]\n\n")
        return Reply(200, headers={"content-type": "text/event-stream"}, chunks=chunks)
    return Reply(
        200,
        {
            "id": "chatcmpl-loopback",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        },
        headers={"content-type": "application/json"},
    )


class LoopbackPrices:
    """The test package's price table for the loopback model (a plugin, as a provider package's is)."""

    @hookimpl
    def dsrs_cost(self, model: str, usage: dsrs.LmUsage) -> dsrs.Cost | None:
        if model.endswith(f":{MODEL}"):
            return dsrs.Cost(msats=usage.prompt_tokens * PROMPT_MSATS + usage.completion_tokens * COMPLETION_MSATS)
        return None


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connection but loopback fails the test, even one whose error the caller swallows (DSPy
    fetches model metadata from GitHub and falls back quietly; nothing on the bridge's path may)."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise ConnectionRefusedError(f"test: no network beyond loopback ({address!r})")
        return real_connect(self, address)

    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "127.0.0.1", "::1", "localhost"):
            attempts.append(host)
            raise socket.gaierror(f"test: no name resolution beyond loopback ({host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    yield
    assert attempts == [], f"network access attempted: {attempts}"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """dsrs-core's plugin plus the test price table; dsrs's cache and ledger in a temporary directory."""
    from dsrs._cache import set_cache

    monkeypatch.setenv("DSRS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DSRS_CACHE_HOME", str(tmp_path / "cache-home"))
    set_cache(None)
    with isolated_plugins(LoopbackPrices()):
        yield
    set_cache(None)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(chat_reply) as srv:
        yield srv


def loopback_lm(srv: LoopbackServer, **settings: Any) -> dsrs.LM:
    return dsrs.LM(f"openai-compatible:{MODEL}", base_url=f"{srv.url}/v1", **settings)


@pytest.fixture
def lm(server: LoopbackServer) -> dsrs.LM:
    return loopback_lm(server)


def chat_bodies(srv: LoopbackServer) -> list[dict[str, Any]]:
    return [r.json() for r in srv.requests if r.path.endswith("/chat/completions")]
