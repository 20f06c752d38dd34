"""OpenTelemetry spans for dsrs calls, following the GenAI semantic conventions.

``pip install 'dsrs-core[otel]'`` (opentelemetry-api only) and ``dsrs.instrument()`` (or
``DSRS_OTEL=1``): every LM attempt becomes a span named ``chat <model>`` with ``gen_ai.*``
attributes (operation, provider, request model and parameters, response model, finish reasons,
input/output tokens) and ``dsrs.*`` ones (cost in msats and USD, lane, cache hit, attempt, request
id); a LaneMux call is a parent span with a child per lane attempt, so failover is visible, and a
failed attempt carries ``error.type``. A stream's span ends with its last chunk. Prompt and
completion content are recorded only with ``capture_content=True`` (``DSRS_OTEL_CONTENT=1``).
Keys never enter a request, so no span attribute can hold one.

When not enabled, the call path tests one module global (``tracer is None``) and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsrs.errors import LMError
    from dsrs.types import LMRequest, LMResponse

__all__ = ["instrument", "uninstrument"]

#: The tracer spans go to, or ``None`` (the default): dsrs is not instrumented.
tracer: Any = None
capture_content = False

# gen_ai.provider.name well-known values (OpenTelemetry GenAI semantic conventions registry).
_PROVIDER_NAMES = {
    "openai": "openai",
    "openai-responses": "openai",
    "codex": "openai",
    "google": "gcp.gemini",
    "anthropic": "anthropic",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "perplexity": "perplexity",
}


def instrument(tracer_provider: Any = None, *, capture_content: bool | None = None) -> None:
    """Send spans of every call to ``tracer_provider`` (default: OpenTelemetry's global one)."""
    global tracer
    try:
        from opentelemetry import trace
    except ImportError:
        raise ImportError("dsrs.instrument() needs OpenTelemetry: pip install 'dsrs-core[otel]'") from None
    from dsrs import __version__

    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    tracer = provider.get_tracer("dsrs", __version__)
    globals()["capture_content"] = (
        bool(capture_content) if capture_content is not None else os.environ.get("DSRS_OTEL_CONTENT") == "1"
    )


def uninstrument() -> None:
    """Stop making spans."""
    global tracer
    tracer = None


def instrument_from_env() -> None:
    """``DSRS_OTEL=1`` instruments at import of the call path (quietly skipped without the API)."""
    if os.environ.get("DSRS_OTEL") == "1" and tracer is None:
        try:
            instrument()
        except ImportError:
            import warnings

            warnings.warn(
                "DSRS_OTEL=1 but opentelemetry-api is not installed: pip install 'dsrs-core[otel]'", stacklevel=2
            )


def _request_attributes(request: LMRequest, lane: str | None, attempt: int, request_id: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": _PROVIDER_NAMES.get(request.provider, request.provider),
        "gen_ai.request.model": request.model,
        "dsrs.provider": request.provider,
        "dsrs.attempt": attempt,
    }
    if request_id:
        attrs["dsrs.request_id"] = request_id
    if lane is not None:
        attrs["dsrs.lane"] = lane
    if request.max_tokens is not None:
        attrs["gen_ai.request.max_tokens"] = request.max_tokens
    if request.temperature is not None:
        attrs["gen_ai.request.temperature"] = request.temperature
    if request.seed is not None:
        attrs["gen_ai.request.seed"] = request.seed
    if request.stop:
        attrs["gen_ai.request.stop_sequences"] = list(request.stop)
    for name in ("top_p", "top_k", "frequency_penalty", "presence_penalty"):
        value = request.options.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[f"gen_ai.request.{name}"] = value
    if capture_content:
        attrs["gen_ai.input.messages"] = json.dumps([m.to_dict() for m in request.messages], default=str)
    return attrs


def response_attributes(response: LMResponse) -> dict[str, Any]:
    u = response.usage
    attrs: dict[str, Any] = {
        "gen_ai.usage.input_tokens": u.prompt_tokens,
        "gen_ai.usage.output_tokens": u.completion_tokens,
        "dsrs.cache_hit": u.cache_hit,
    }
    if response.model:
        attrs["gen_ai.response.model"] = response.model
    if response.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = [response.finish_reason]
    if u.cost_msats is not None:
        attrs["dsrs.cost_msats"] = u.cost_msats
    if u.cost_usd is not None:
        attrs["dsrs.cost_usd"] = u.cost_usd
    if capture_content:
        attrs["gen_ai.output.messages"] = json.dumps([response.message().to_dict()], default=str)
    return attrs


class Attempt:
    """One attempt's span: :meth:`ok` with the answer, :meth:`failed` with the error."""

    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def ok(self, response: LMResponse) -> None:
        self.span.set_attributes(response_attributes(response))

    def failed(self, exc: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("error.type", type(exc).__name__)
        self.span.set_status(Status(StatusCode.ERROR, _safe_message(exc)))

    def end(self) -> None:
        self.span.end()


def _safe_message(exc: BaseException) -> str:
    # LMError messages are redacted at construction; anything else gets only its class name.
    from dsrs.errors import LMError

    return str(exc)[:300] if isinstance(exc, LMError) else type(exc).__name__


@contextmanager
def attempt(request: LMRequest, lane: str | None, attempt_no: int, request_id: str) -> Iterator[Attempt]:
    """A current span around one call attempt (so HTTP client spans nest under it)."""
    attrs = _request_attributes(request, lane, attempt_no, request_id)
    with tracer.start_as_current_span(f"chat {request.model}", attributes=attrs, record_exception=False) as span:
        rec = Attempt(span)
        try:
            yield rec
        except BaseException as exc:
            rec.failed(exc)
            raise


def stream_attempt(request: LMRequest, lane: str | None, attempt_no: int, request_id: str) -> Attempt:
    """A span for one streamed attempt, ended by the caller at the last chunk (not made current:
    a stream is consumed across the caller's own awaits)."""
    attrs = _request_attributes(request, lane, attempt_no, request_id)
    attrs["dsrs.stream"] = True
    return Attempt(tracer.start_span(f"chat {request.model}", attributes=attrs, record_exception=False))


def cache_hit(request: LMRequest, response: LMResponse, lane: str | None, request_id: str, attempt_no: int) -> None:
    attrs = _request_attributes(request, lane, attempt_no, request_id)
    attrs.update(response_attributes(response))
    tracer.start_span(f"chat {request.model}", attributes=attrs).end()


@contextmanager
def mux_call(mux_name: str, selector: str | None, stream: bool) -> Iterator[Any]:
    """The parent span of one LaneMux call; its lane attempts are its children."""
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "dsrs.lanemux": mux_name, "dsrs.stream": stream}
    if selector is not None:
        attrs["dsrs.lane_selector"] = selector
    with tracer.start_as_current_span(f"dsrs.lanemux {mux_name}", attributes=attrs, record_exception=False) as span:
        try:
            yield span
        except BaseException as exc:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, _safe_message(exc)))
            raise


def note_lmerror(span: Any, exc: LMError) -> None:  # pragma: no cover - kept for plugins
    span.set_attribute("error.type", type(exc).__name__)
