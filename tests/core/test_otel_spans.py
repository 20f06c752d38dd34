"""OpenTelemetry spans through the SDK's in-memory exporter: GenAI attributes on every attempt, a
LaneMux parent with a child per lane (failover visible, error.type on failures), streams ending
their span at the last chunk, content only when asked for, and no secret in any attribute."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="needs opentelemetry-sdk (dsrs-core[test])")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dsrs
from dsrs import _otel
from dsrs.testing import Reply, openai_wire_server

KEY = "sk-otel-secret-key-0123456789"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    dsrs.instrument(provider)
    try:
        yield exporter
    finally:
        dsrs.uninstrument()


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_one_span_per_call_with_genai_attributes(spans: InMemorySpanExporter) -> None:
    with openai_wire_server() as srv:
        dsrs.LM("m", base_url=srv.url, api_key=KEY, max_tokens=50, temperature=0.2).call("hello spans")
    (span,) = spans.get_finished_spans()
    a = _attrs(span)
    assert span.name == "chat m"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai-compatible"
    assert a["gen_ai.request.model"] == "m"
    assert a["gen_ai.request.max_tokens"] == 50 and a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["dsrs.cache_hit"] is False and a["dsrs.attempt"] == 1
    assert "gen_ai.input.messages" not in a  # content only when enabled
    assert KEY not in repr(a)


def test_a_lanemux_call_is_a_parent_with_one_child_per_lane_attempt(spans: InMemorySpanExporter) -> None:
    with openai_wire_server() as down, openai_wire_server() as up:
        down.handler = lambda req: Reply(503, {"error": {"message": f"down {KEY}", "type": "server_error"}})
        mux = dsrs.LaneMux(retry=dsrs.RetryPolicy(max_attempts=1))
        mux.add_lane("down", dsrs.LM("m", base_url=down.url, api_key=KEY))
        mux.add_lane("up", dsrs.LM("m", base_url=up.url, api_key=KEY))
        assert mux.call("fail over").lane == "up"
    finished = spans.get_finished_spans()
    parent = next(s for s in finished if s.name.startswith("dsrs.lanemux"))
    children = [s for s in finished if s.parent is not None and s.parent.span_id == parent.context.span_id]
    assert [(_attrs(c)["dsrs.lane"], _attrs(c).get("error.type")) for c in children] == [
        ("down", "ProviderUnavailableError"),
        ("up", None),
    ]
    assert _attrs(parent)["dsrs.lane"] == "up"
    for s in finished:
        assert KEY not in repr(_attrs(s)) and KEY not in (s.status.description or "")


def test_a_stream_ends_its_span_at_the_last_chunk(spans: InMemorySpanExporter) -> None:
    with openai_wire_server() as srv:
        stream = dsrs.LM("m", base_url=srv.url).stream("one two three")
        pieces = iter(stream)
        next(pieces)
        assert spans.get_finished_spans() == ()  # still open mid-stream
        rest = list(pieces)
    assert rest is not None and stream.response is not None
    (span,) = spans.get_finished_spans()
    assert _attrs(span)["dsrs.stream"] is True and _attrs(span)["gen_ai.usage.output_tokens"] > 0


def test_a_mux_stream_parents_its_lane_span(spans: InMemorySpanExporter) -> None:
    with openai_wire_server() as srv:
        mux = dsrs.LaneMux().add_lane("only", dsrs.LM("m", base_url=srv.url))
        assert "".join(mux.stream("streamed through the mux")) == "streamed through the mux"
    finished = spans.get_finished_spans()
    parent = next(s for s in finished if s.name.startswith("dsrs.lanemux"))
    child = next(s for s in finished if s.name == "chat m")
    assert child.parent is not None and child.parent.span_id == parent.context.span_id


def test_content_is_recorded_only_when_enabled() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    dsrs.instrument(provider, capture_content=True)
    try:
        dsrs.LM("fake:echo").call("visible prompt")
    finally:
        dsrs.uninstrument()
    (span,) = exporter.get_finished_spans()
    assert "visible prompt" in _attrs(span)["gen_ai.input.messages"]
    assert "visible prompt" in _attrs(span)["gen_ai.output.messages"]


def test_cache_hits_are_spans_marked_as_hits(
    spans: InMemorySpanExporter, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dsrs import _cache

    previous = _cache.get_cache()
    _cache.set_cache(_cache.MemoryCache())
    try:
        lm = dsrs.LM("fake:echo", cache=True)
        lm.call("twice")
        lm.call("twice")
    finally:
        _cache.set_cache(previous)
    hits = [_attrs(s)["dsrs.cache_hit"] for s in spans.get_finished_spans()]
    assert hits == [False, True]


def test_not_instrumented_makes_no_spans_and_costs_one_check() -> None:
    assert _otel.tracer is None
    assert dsrs.LM("fake:echo").call("quiet").text == "quiet"
