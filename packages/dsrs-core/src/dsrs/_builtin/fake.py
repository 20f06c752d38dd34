"""The built-in deterministic fake provider, for tests, examples and plugin authors.

Models:

* ``fake:echo`` — answers with the last user message it got;
* ``fake:script`` — answers with the items of the ``responses=[...]`` option, in turn;
* ``fake:<anything else>`` — answers ``"ok"``.

Options (``LM("fake:echo", delay=0.05, fail="rate_limit", fail_times=2)``): ``delay`` seconds
before answering; ``fail`` an error kind (``rate_limit``, ``quota``, ``auth``, ``permission``,
``unavailable``, ``timeout``, ``invalid``, ``context``, ``content_filter``, ``parse``) raised on the
first ``fail_times`` calls of this LM (all calls when omitted), with ``retry_after``. Usage is
counted as for a real call (one token per word or punctuation mark); pricing is 1 msat per prompt
token and 2 msats per completion token. ``DSRS_FAKE_LANE=1`` makes ``auto_detect`` include it.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from typing import ClassVar

from dsrs import errors
from dsrs._provider import ProbeResult, Provider, ProviderConfig, ProviderSpec
from dsrs._usage import Cost, LmUsage
from dsrs.types import LMRequest, LMResponse, StreamChunk

__all__ = ["FakeProvider", "count_tokens", "fake_cost"]

_TOKEN = re.compile(r"\w+|[^\w\s]")
_ERRORS: dict[str, type[errors.LMError]] = {
    "rate_limit": errors.RateLimitError,
    "quota": errors.QuotaExceededError,
    "auth": errors.AuthenticationError,
    "permission": errors.PermissionDeniedError,
    "unavailable": errors.ProviderUnavailableError,
    "timeout": errors.LMTimeoutError,
    "invalid": errors.InvalidRequestError,
    "context": errors.ContextWindowExceededError,
    "content_filter": errors.ContentFilterError,
    "parse": errors.ResponseParseError,
}
PROMPT_MSATS_PER_TOKEN = 1
COMPLETION_MSATS_PER_TOKEN = 2


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per word or punctuation mark."""
    return len(_TOKEN.findall(text))


def fake_cost(usage: LmUsage) -> Cost:
    return Cost(
        msats=usage.prompt_tokens * PROMPT_MSATS_PER_TOKEN + usage.completion_tokens * COMPLETION_MSATS_PER_TOKEN
    )


class FakeProvider(Provider):
    supports_streaming: ClassVar[bool] = True
    supports_response_format: ClassVar[bool] = False
    supports_tools: ClassVar[bool] = False

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        self.calls = 0

    def _answer(self, request: LMRequest) -> str:
        opts = request.options
        if request.model == "echo":
            users = [m.text for m in request.messages if m.role == "user"]
            return users[-1] if users else ""
        if request.model == "script":
            responses = opts.get("responses")
            if not isinstance(responses, (list, tuple)) or not responses:
                raise errors.InvalidRequestError(
                    "fake:script needs a non-empty responses=[...] option", provider="fake", model=request.model
                )
            return str(responses[(self.calls - 1) % len(responses)])
        return str(opts.get("text", "ok"))

    async def _prepare(self, request: LMRequest) -> str:
        self.calls += 1
        opts = request.options
        delay = float(opts.get("delay", 0) or 0)
        if delay > 0:
            await asyncio.sleep(delay)
        kind = opts.get("fail")
        if kind:
            times = opts.get("fail_times")
            if times is None or self.calls <= int(times):
                cls = _ERRORS.get(str(kind))
                if cls is None:
                    raise errors.InvalidRequestError(
                        f"unknown fake failure {kind!r}; one of {sorted(_ERRORS)}", provider="fake", model=request.model
                    )
                ra = opts.get("retry_after")
                raise cls(
                    f"fake {kind} failure",
                    provider="fake",
                    model=request.model,
                    retry_after=float(ra) if ra is not None else None,
                )
        return self._answer(request)

    def _response(self, request: LMRequest, text: str) -> LMResponse:
        prompt = sum(count_tokens(m.text) for m in request.messages)
        completion = count_tokens(text)
        if request.max_tokens is not None and completion > request.max_tokens:
            words = _TOKEN.findall(text)[: request.max_tokens]
            text, completion, finish = " ".join(words), len(words), "length"
        else:
            finish = "stop"
        raw = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        return LMResponse(
            text=text,
            usage=LmUsage.from_tokens(prompt, completion),
            finish_reason=finish,
            raw_usage=raw,
            provider="fake",
            model=request.model,
        )

    async def acomplete(self, request: LMRequest) -> LMResponse:
        return self._response(request, await self._prepare(request))

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        response = self._response(request, await self._prepare(request))
        for piece in re.findall(r"\S+\s*|\s+", response.text):
            yield StreamChunk(text=piece)
        yield StreamChunk(response=response)

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        if os.environ.get("DSRS_FAKE_LANE", "").lower() in ("1", "true", "yes"):
            return ProbeResult(True, True, 0.0, "fake lane enabled (DSRS_FAKE_LANE)", "echo")
        return ProbeResult(False, None, None, "test provider; set DSRS_FAKE_LANE=1 to use it as a lane")
