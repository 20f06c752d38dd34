"""The provider conformance kit: base test classes every provider package's tests subclass.

::

    from dsrs.testing import ProviderConformance

    class TestAcmeConformance(ProviderConformance):
        provider_name = "acme"
        supports_response_format = True

        @pytest.fixture
        def lm(self, acme_server):            # an LM served by a real or loopback server
            return dsrs.LM("acme:model-1", base_url=acme_server.url, api_key="sk-test-secret-value")

        @pytest.fixture
        def unreachable_lm(self):            # the same provider pointed at a closed port
            return dsrs.LM("acme:model-1", base_url="http://127.0.0.1:9", api_key="sk-test-secret-value")

Capability flags switch tests on or off; a test that does not apply is skipped with the reason, so
the report says what a provider does *not* support.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest

import dsrs
from dsrs.errors import LMError, ProviderUnavailableError

__all__ = ["ProviderConformance"]

SECRET = "sk-conformance-secret-0123456789"  # noqa: S105 - a fake key the tests look for


class ProviderConformance:
    """Behaviour every dsrs provider must show. Subclass, set the flags, provide the fixtures."""

    #: The registered provider name (``dsrs.providers()`` must list it).
    provider_name: ClassVar[str] = ""
    supports_streaming: ClassVar[bool] = True
    supports_response_format: ClassVar[bool] = False
    supports_tools: ClassVar[bool] = False
    reports_usage: ClassVar[bool] = True
    #: ``True`` when the model under test has a known price (cost must then be a number).
    priced: ClassVar[bool] = True
    #: A prompt the server under test answers with some non-empty text.
    prompt: ClassVar[str] = "Say hello in one word."

    @pytest.fixture
    def lm(self) -> dsrs.LM:
        raise NotImplementedError("provide an `lm` fixture returning a dsrs.LM for this provider")

    @pytest.fixture
    def unreachable_lm(self) -> dsrs.LM | None:
        """The provider pointed at a closed port; ``None`` skips the connection-failure test."""
        return None

    # --- registration -----------------------------------------------------------------------

    def test_registered_with_distribution(self) -> None:
        specs = {s.name: s for s in dsrs.providers()}
        assert self.provider_name in specs, f"{self.provider_name!r} not in {sorted(specs)}"
        spec = specs[self.provider_name]
        assert spec.distribution and spec.distribution != "(in code)"
        assert spec.load() is not None

    def test_lm_resolves_to_provider(self, lm: dsrs.LM) -> None:
        assert lm.provider_name == self.provider_name

    # --- calls --------------------------------------------------------------------------------

    def test_call_returns_text(self, lm: dsrs.LM) -> None:
        r = lm.call(self.prompt)
        assert isinstance(r, dsrs.LMResponse)
        assert isinstance(r.text, str) and r.text.strip()
        assert r.provider == self.provider_name
        assert r.usage.calls == 1 and not r.usage.cache_hit

    def test_async_call(self, lm: dsrs.LM) -> None:
        r = asyncio.run(lm.acall([{"role": "user", "content": self.prompt}]))
        assert r.text.strip()

    def test_sync_call_inside_running_loop(self, lm: dsrs.LM) -> None:
        async def inside() -> str:
            return lm.call(self.prompt).text  # what a Jupyter cell does

        assert asyncio.run(inside()).strip()

    def test_usage_counted(self, lm: dsrs.LM) -> None:
        if not self.reports_usage:
            pytest.skip("provider does not report usage")
        u = lm.call(self.prompt).usage
        assert u.prompt_tokens > 0
        assert u.completion_tokens > 0
        assert u.total_tokens >= u.prompt_tokens + u.completion_tokens - u.reasoning_tokens
        assert u.cached_tokens <= u.prompt_tokens

    def test_cost_is_known_or_none(self, lm: dsrs.LM) -> None:
        u = lm.call(self.prompt).usage
        if self.priced:
            assert isinstance(u.cost_msats, int) and u.cost_msats >= 0
            assert isinstance(u.cost_usd, float) and u.cost_usd >= 0
        else:
            assert u.cost_msats is None and u.cost_usd is None, "unknown price must be None, never 0"

    def test_stream_yields_deltas_then_usage(self, lm: dsrs.LM) -> None:
        if not self.supports_streaming:
            pytest.skip("provider does not stream")
        stream = lm.stream(self.prompt)
        deltas = list(stream)
        assert deltas and all(isinstance(d, str) for d in deltas)
        assert stream.response is not None
        assert "".join(deltas) == stream.response.text
        if self.reports_usage:
            assert stream.response.usage.total_tokens > 0

    def test_async_stream(self, lm: dsrs.LM) -> None:
        if not self.supports_streaming:
            pytest.skip("provider does not stream")

        async def run() -> tuple[list[str], dsrs.LMResponse | None]:
            s = lm.astream(self.prompt)
            return [d async for d in s], s.response

        deltas, response = asyncio.run(run())
        assert response is not None and "".join(deltas) == response.text

    def test_response_format_json_schema(self, lm: dsrs.LM) -> None:
        if not self.supports_response_format:
            pytest.skip("provider has no structured output")
        schema = {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
            "additionalProperties": False,
        }
        r = lm.call(
            'Reply with a JSON object with one key "answer".',
            response_format=dsrs.ResponseFormat(name="reply", schema=schema),
        )
        data: Any = json.loads(r.text)
        assert isinstance(data, dict) and isinstance(data.get("answer"), str)

    # --- secrets and failures -----------------------------------------------------------------

    def test_api_key_never_in_repr(self, lm: dsrs.LM) -> None:
        keyed = lm.with_api_key(SECRET)
        assert SECRET not in repr(keyed) and SECRET not in str(keyed)
        assert SECRET not in repr(keyed.provider())
        assert SECRET not in keyed.build_request("x").cache_key()
        assert SECRET not in json.dumps(keyed.build_request("x").canonical(), default=str)

    def test_unreachable_server_is_provider_unavailable(self, unreachable_lm: dsrs.LM | None) -> None:
        if unreachable_lm is None:
            pytest.skip("no unreachable_lm fixture")
        keyed = unreachable_lm.with_api_key(SECRET).with_timeout(5)
        with pytest.raises((ProviderUnavailableError, dsrs.LMTimeoutError)) as info:
            keyed.call(self.prompt)
        err: LMError = info.value
        assert err.provider == self.provider_name
        assert SECRET not in str(err) and SECRET not in repr(err) and SECRET not in (err.body or "")

    def test_probe_answers(self) -> None:
        spec = next(s for s in dsrs.providers() if s.name == self.provider_name)
        result = asyncio.run(spec.load().probe(spec, 2.0))
        assert isinstance(result, dsrs.ProbeResult)
        assert isinstance(result.configured, bool)
