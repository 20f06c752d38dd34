"""Real response shapes from the vendors' documentation, over loopback, called and streamed.

* Mistral reasoning models (docs.mistral.ai "Reasoning"): ``message.content`` is a list of a
  ``thinking`` chunk (itself a list of text chunks) and a ``text`` chunk; streamed the same way.
* DeepSeek ``deepseek-reasoner`` (api-docs.deepseek.com "Reasoning Model"): ``reasoning_content``.
* Groq reasoning (console.groq.com/docs/reasoning, ``reasoning_format: "parsed"``): ``reasoning``.
* OpenRouter (openrouter.ai/docs "Errors" > "Error during streaming"): the last chunk carries an
  ``error`` object next to ``choices`` with ``finish_reason: "error"``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import dsrs
from dsrs import errors
from dsrs.testing import LoopbackServer, Reply

from .conftest import SECRET

MISTRAL = {
    "id": "cmpl-e5cc70bb28c444948073e77776eb30ef",
    "object": "chat.completion",
    "model": "magistral-medium-latest",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "2 + 2 makes 4."}]},
                    {"type": "text", "text": "The answer is 4."},
                ],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
}
DEEPSEEK = {
    "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
    "object": "chat.completion",
    "model": "deepseek-reasoner",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "9.11 < 9.8", "reasoning_content": "Compare 0.11 and 0.8."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
}
GROQ = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "qwen/qwen3-32b",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Blue.", "reasoning": "Rayleigh scattering."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}


def sse(*events: Any) -> Reply:
    chunks = [f"data: {json.dumps(e) if not isinstance(e, str) else e}\n\n".encode() for e in events]
    return Reply(200, headers={"content-type": "text/event-stream"}, chunks=chunks)


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


@pytest.mark.parametrize(
    ("model", "body", "text", "reasoning"),
    [
        ("mistral:magistral-medium-latest", MISTRAL, "The answer is 4.", "2 + 2 makes 4."),
        ("deepseek:deepseek-reasoner", DEEPSEEK, "9.11 < 9.8", "Compare 0.11 and 0.8."),
        ("groq:qwen/qwen3-32b", GROQ, "Blue.", "Rayleigh scattering."),
    ],
)
def test_reasoning_is_kept_apart_from_text(model: str, body: Any, text: str, reasoning: str) -> None:
    with LoopbackServer(lambda r: Reply(200, body)) as srv:
        r = dsrs.LM(model, base_url=srv.url, api_key=SECRET).call("q")
    assert (r.text, r.reasoning) == (text, reasoning) and isinstance(r.text, str)


def test_mistral_thinking_chunks_stream_as_reasoning_deltas() -> None:
    events = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "2 + 2"}]}]}),
        chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": " makes 4."}]}]}),
        chunk({"content": [{"type": "text", "text": "The answer"}]}),
        chunk({"content": " is 4."}, "stop", usage={"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}),
        "[DONE]",
    ]
    with LoopbackServer(lambda r: sse(*events)) as srv:
        stream = dsrs.LM("mistral:magistral-medium-latest", base_url=srv.url, api_key=SECRET).stream("q")
        deltas = list(stream)
    assert deltas == ["The answer", " is 4."]  # text deltas are str, thinking is not among them
    assert stream.reasoning == "2 + 2 makes 4."
    final = stream.response
    assert final is not None and (final.text, final.reasoning) == ("The answer is 4.", "2 + 2 makes 4.")
    assert final.usage.total_tokens == 30


def test_openrouter_error_chunk_with_choices_fails_the_stream() -> None:
    events = [
        chunk({"role": "assistant", "content": "Hel"}),
        {
            "id": "cmpl-abc123",
            "object": "chat.completion.chunk",
            "model": "openai/gpt-4o",
            "provider": "openai",
            "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        },
    ]
    with LoopbackServer(lambda r: sse(*events)) as srv:
        lm = dsrs.LM("openrouter:openai/gpt-4o", base_url=srv.url, api_key=SECRET)
        with pytest.raises(errors.ProviderUnavailableError, match="Provider disconnected"):
            list(lm.stream("q"))


@pytest.mark.parametrize(
    "body",
    [
        {"choices": [{"index": 0, "message": "text", "finish_reason": "stop"}]},
        {"choices": [{"index": 0, "message": {"content": {"an": "object"}}, "finish_reason": "stop"}]},
        {"choices": [{"index": 0, "message": {"content": "x", "tool_calls": {"id": 1}}, "finish_reason": "stop"}]},
        {"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}], "usage": [1, 2]},
    ],
)
def test_wrong_types_are_a_lane_fault_the_mux_moves_past(body: Any) -> None:
    with LoopbackServer(lambda r: Reply(200, body)) as bad:
        lm = dsrs.LM("groq:llama-3.1-8b-instant", base_url=bad.url, api_key=SECRET)
        with pytest.raises(errors.ResponseParseError):
            lm.call("q")
        mux = dsrs.LaneMux().add_lane("bad", lm, tier="premium").add_lane("ok", "fake:echo", tier="local")
        assert mux.call("q").lane == "ok"


# --- Responses API: the response object's types (API reference "The response object") ------------

RESP = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-4.1"}


@pytest.mark.parametrize(
    "output",
    [
        "not a list",
        ["not an item"],
        [{"type": "message", "content": "text"}],
        [{"type": "message", "content": [{"type": "output_text", "text": {"an": "object"}}]}],
        [{"type": "function_call", "arguments": "{}"}],
        [{"type": "function_call", "name": "f", "arguments": 5}],
        [{"type": "reasoning", "summary": [{"type": "summary_text", "text": 3}]}],
    ],
)
def test_responses_wrong_types_are_parse_errors(output: Any) -> None:
    from dsrs_openai import responses

    body = json.dumps({**RESP, "output": output}).encode()
    with pytest.raises(errors.ResponseParseError, match="unexpected response object shape"):
        responses.decode_response(200, {}, body, provider="openai-responses", model="gpt-4.1")


def test_responses_wrong_usage_types_are_parse_errors() -> None:
    from dsrs_openai import responses

    body = json.dumps({**RESP, "output": [], "usage": {"input_tokens": "ten"}}).encode()
    with pytest.raises(errors.ResponseParseError):
        responses.decode_response(200, {}, body, provider="openai-responses", model="gpt-4.1")


def test_responses_stream_delta_of_the_wrong_type_is_a_parse_error() -> None:
    from dsrs_openai import responses

    dec = responses.ResponsesStreamDecoder(provider="openai-responses", model="gpt-4.1")
    with pytest.raises(errors.ResponseParseError, match="stream event shape"):
        dec.feed(json.dumps({"type": "response.output_text.delta", "delta": {"x": 1}}))


def test_a_huge_json_reply_to_a_stream_request_stops_at_the_body_bound() -> None:
    # A server answering a stream request with one JSON body (an error object, or no streaming)
    # is read whole; that read is held to the same max_body_bytes bound as a plain body.
    megabyte = b" " * (1 << 20)
    chunks = [b'{"id": "x", "pad": "', *([megabyte] * 40), b'"}']
    with LoopbackServer(lambda req: Reply(200, headers={"content-type": "application/json"}, chunks=chunks)) as srv:
        lm = dsrs.LM("openai:gpt-4o-mini", base_url=srv.url + "/v1", api_key=SECRET)
        with pytest.raises(errors.ResponseParseError, match="max_body_bytes") as info:
            "".join(lm.stream("hello"))
    assert info.value.retryable is False  # the same server would send the same body again
