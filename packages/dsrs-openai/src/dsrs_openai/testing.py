"""Loopback servers speaking OpenAI's wire, for tests and benchmarks (no network; pytest not needed).

:func:`openai_server` answers ``GET /models``, ``POST /chat/completions`` and ``POST /responses``
(JSON or SSE), on top of :class:`dsrs.testing.LoopbackServer` (so tests can ``push`` scripted
failures and read ``requests``). Answers are deterministic:

* text echoes the last user message; usage counts whitespace-separated words; a chat stream
  carries usage in a last chunk when ``stream_options.include_usage`` is asked (OpenAI), else on
  the finishing chunk (Mistral, llama-server);
* with ``response_format``/``text.format`` ``json_schema``, the answer is a JSON object that fills
  each required property (strings get the echoed text);
* with tools offered (and no tool result yet), the model calls **every** tool in parallel, with
  arguments that fill each tool's required properties.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from dsrs.testing import LoopbackServer, RecordedRequest, Reply

__all__ = ["fill_schema", "openai_reply", "openai_server", "sse", "responses_events"]


def _words(text: str) -> int:
    return len(text.split())


def sse(obj: Mapping[str, Any], event: str | None = None) -> str:
    """One SSE event (``event:`` line when given)."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj)}\n\n"


def fill_schema(schema: Mapping[str, Any], text: str) -> Any:
    """A value satisfying a simple JSON schema (objects, arrays, scalars, enums)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind: Any = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {k: fill_schema(props.get(k) or {}, text) for k in required}
    if kind == "array":
        return [fill_schema(schema.get("items") or {}, text)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return text


def _text_of(content: Any) -> str:
    """A message's text: the string, or the ``text`` parts of a content list (media parts skipped)."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


def _chat_text(body: Mapping[str, Any]) -> tuple[str, int]:
    messages = body.get("messages") or []
    users = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    prompt = sum(_words(_text_of(m.get("content"))) for m in messages)
    return (users[-1] if users else ""), prompt


def _json_answer(fmt: Mapping[str, Any] | None, text: str) -> str | None:
    if not fmt:
        return None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") if "json_schema" in fmt else fmt.get("schema")
        return json.dumps(fill_schema(schema or {"type": "object"}, text))
    if fmt.get("type") == "json_object":
        return json.dumps({"text": text})
    return None


def _tool_args(params: Mapping[str, Any] | None) -> str:
    return json.dumps(fill_schema(params or {"type": "object"}, "x"))


def _chat_reply(req: RecordedRequest, call_tools: bool = True) -> Reply:
    body = req.json() or {}
    text, prompt = _chat_text(body)
    model = body.get("model", "loopback-model")
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    wants_tools = (
        call_tools
        and bool(tools)
        and body.get("tool_choice") != "none"
        and not (messages and messages[-1].get("role") == "tool")
    )
    answer = _json_answer(body.get("response_format"), text) or text
    calls: list[dict[str, Any]] = (
        [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": t["function"]["name"], "arguments": _tool_args(t["function"].get("parameters"))},
            }
            for i, t in enumerate(tools)
        ]
        if wants_tools
        else []
    )
    completion = _words(answer) if not calls else 5 * len(calls)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    finish = "tool_calls" if calls else "stop"
    base = {"id": "chatcmpl-loopback", "created": int(time.time()), "model": model}
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events: list[str] = []
        if calls:
            for i, c in enumerate(calls):  # each call split in two deltas, as OpenAI streams them
                fn = c["function"]
                half = len(fn["arguments"]) // 2
                events.append(
                    sse(
                        {
                            **base,
                            "object": "chat.completion.chunk",
                            "choices": [
                                {
                                    "index": 0,
                                    "delta": {
                                        "tool_calls": [
                                            {
                                                "index": i,
                                                "id": c["id"],
                                                "type": "function",
                                                "function": {"name": fn["name"], "arguments": fn["arguments"][:half]},
                                            }
                                        ]
                                    },
                                    "finish_reason": None,
                                }
                            ],
                        }
                    )
                )
                events.append(
                    sse(
                        {
                            **base,
                            "object": "chat.completion.chunk",
                            "choices": [
                                {
                                    "index": 0,
                                    "delta": {
                                        "tool_calls": [{"index": i, "function": {"arguments": fn["arguments"][half:]}}]
                                    },
                                    "finish_reason": None,
                                }
                            ],
                        }
                    )
                )
        else:
            for i, w in enumerate(answer.split(" ")):
                piece = w if i == 0 else " " + w
                events.append(
                    sse(
                        {
                            **base,
                            "object": "chat.completion.chunk",
                            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                        }
                    )
                )
        events.append(
            sse(
                {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                    # without stream_options, usage rides on the finishing chunk (Mistral, llama-server)
                    **({} if include_usage else {"usage": usage}),
                }
            )
        )
        if include_usage:  # OpenAI: a separate last chunk with empty choices
            events.append(sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        events.append("data: [DONE]\n\n")
        return Reply(200, headers={"content-type": "text/event-stream"}, chunks=events)
    message: dict[str, Any] = {"role": "assistant", "content": None if calls else answer}
    if calls:
        message["tool_calls"] = calls
    return Reply(
        200,
        {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        },
        headers={"content-type": "application/json"},
    )


def _responses_text(body: Mapping[str, Any]) -> tuple[str, int, bool]:
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    items = items or []
    texts: list[str] = []
    last_user = ""
    for item in items:
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        if isinstance(content, str):
            texts.append(content)
            if item.get("role") == "user":
                last_user = content
        elif item.get("type") == "function_call_output":
            texts.append(str(item.get("output") or ""))
    prompt = sum(_words(t) for t in texts) + _words(str(body.get("instructions") or ""))
    after_tool = bool(items) and items[-1].get("type") == "function_call_output"
    return last_user, prompt, after_tool


def responses_events(body: Mapping[str, Any], call_tools: bool = True) -> tuple[dict[str, Any], list[str]]:
    """The final ``response`` object and the SSE events a streamed ``/responses`` call gets."""
    text, prompt, after_tool = _responses_text(body)
    model = body.get("model", "loopback-model")
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    wants_tools = call_tools and bool(tools) and body.get("tool_choice") != "none" and not after_tool
    answer = _json_answer((body.get("text") or {}).get("format"), text) or text
    output: list[dict[str, Any]] = []
    if wants_tools:
        for i, t in enumerate(tools):
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{i}",
                    "call_id": f"call_{i}",
                    "name": t["name"],
                    "arguments": _tool_args(t.get("parameters")),
                    "status": "completed",
                }
            )
    else:
        output.append(
            {
                "type": "message",
                "id": "msg_0",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": answer, "annotations": []}],
            }
        )
    out_tokens = 5 * len(output) if wants_tools else _words(answer)
    reasoning = 2 if (body.get("reasoning") or {}).get("effort") else 0
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": out_tokens + reasoning,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + out_tokens + reasoning,
    }
    limit = body.get("max_output_tokens")
    status = "incomplete" if isinstance(limit, int) and out_tokens > limit else "completed"
    response = {
        "id": "resp_loopback",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "usage": usage,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "error": None,
    }
    seq = iter(range(10_000))
    shell = {**response, "status": "in_progress", "output": [], "usage": None}
    events = [
        sse({"type": "response.created", "sequence_number": next(seq), "response": shell}, "response.created"),
        sse({"type": "response.in_progress", "sequence_number": next(seq), "response": shell}, "response.in_progress"),
    ]
    for idx, item in enumerate(output):
        if item["type"] == "message":
            events.append(
                sse(
                    {
                        "type": "response.output_item.added",
                        "sequence_number": next(seq),
                        "output_index": idx,
                        "item": {**item, "status": "in_progress", "content": []},
                    },
                    "response.output_item.added",
                )
            )
            for j, w in enumerate(answer.split(" ")):
                delta = w if j == 0 else " " + w
                events.append(
                    sse(
                        {
                            "type": "response.output_text.delta",
                            "sequence_number": next(seq),
                            "item_id": item["id"],
                            "output_index": idx,
                            "content_index": 0,
                            "delta": delta,
                        },
                        "response.output_text.delta",
                    )
                )
            events.append(
                sse(
                    {
                        "type": "response.output_text.done",
                        "sequence_number": next(seq),
                        "item_id": item["id"],
                        "output_index": idx,
                        "content_index": 0,
                        "text": answer,
                    },
                    "response.output_text.done",
                )
            )
        else:
            events.append(
                sse(
                    {
                        "type": "response.output_item.added",
                        "sequence_number": next(seq),
                        "output_index": idx,
                        "item": {**item, "arguments": "", "status": "in_progress"},
                    },
                    "response.output_item.added",
                )
            )
            events.append(
                sse(
                    {
                        "type": "response.function_call_arguments.delta",
                        "sequence_number": next(seq),
                        "item_id": item["id"],
                        "output_index": idx,
                        "delta": item["arguments"],
                    },
                    "response.function_call_arguments.delta",
                )
            )
        events.append(
            sse(
                {"type": "response.output_item.done", "sequence_number": next(seq), "output_index": idx, "item": item},
                "response.output_item.done",
            )
        )
    kind = "response.completed" if status == "completed" else "response.incomplete"
    events.append(sse({"type": kind, "sequence_number": next(seq), "response": response}, kind))
    return response, events


def _responses_reply(req: RecordedRequest, call_tools: bool = True) -> Reply:
    body = req.json() or {}
    response, events = responses_events(body, call_tools)
    if body.get("stream"):
        return Reply(200, headers={"content-type": "text/event-stream"}, chunks=events)
    return Reply(200, response, headers={"content-type": "application/json"})


def openai_reply(req: RecordedRequest, call_tools: bool = True) -> Reply:
    """Route a request: ``/models``, ``/chat/completions``, ``/responses``; anything else 404.

    ``call_tools=False`` answers with text even when tools are offered (an agent such as Codex
    would otherwise run the scripted calls)."""
    path = req.path.split("?", 1)[0].rstrip("/")
    if req.method == "GET" and path.endswith("/models"):
        return Reply(
            200,
            {"object": "list", "data": [{"id": "loopback-model", "object": "model", "created": 0, "owned_by": "dsrs"}]},
        )
    if req.method == "POST" and path.endswith("/chat/completions"):
        return _chat_reply(req, call_tools)
    if req.method == "POST" and path.endswith("/responses"):
        return _responses_reply(req, call_tools)
    return Reply(
        404,
        {
            "error": {
                "message": f"Invalid URL ({req.method} {path})",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )


def openai_server(*, call_tools: bool = True) -> LoopbackServer:
    """A loopback server speaking OpenAI's chat and Responses wire (not started)."""
    return LoopbackServer(lambda req: openai_reply(req, call_tools))
