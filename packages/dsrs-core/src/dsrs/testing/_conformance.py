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
the report says what a provider does *not* support:

* ``supports_streaming``, ``supports_response_format``, ``supports_tools``, ``reports_usage``,
  ``priced`` — what the provider does (see each flag's comment below);
* ``http_wire`` — the provider sends HTTP to ``base_url``: the kit then points it at a server of
  its own that **echoes the key back** (in 401 and 500 bodies and their error fields) and checks
  that neither a key given as ``api_key=`` nor one read from the provider's environment variables
  appears in the error, its attributes or its ``__cause__``/``__context__`` chain, on a call and
  on a stream. Override :meth:`echo_lm` when pointing the LM at a URL needs more than
  ``with_base_url``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest

import dsrs
from dsrs.errors import LMError, ProviderUnavailableError
from dsrs.testing._loopback import LoopbackServer, RecordedRequest, Reply

__all__ = ["ProviderConformance"]

SECRET = "sk-conformance-secret-0123456789"  # noqa: S105 - a fake key the tests look for
ENV_SECRET = "env-conformance-secret-9876543210"  # noqa: S105 - a fake key put in the environment


def _echo_keys(status: int, secret: str) -> Any:
    """A handler answering ``status`` with every credential it received echoed in every field a
    wire's error may carry (message, type, code, status), as a hostile or careless server would."""

    def handle(req: RecordedRequest) -> Reply:
        echoed = " ".join(req.headers.values()) + f" {secret}"
        err = {"message": f"invalid key {echoed}", "type": echoed, "code": echoed, "status": echoed, "param": echoed}
        return Reply(status, {"error": err, "message": echoed, "detail": echoed}, headers={"x-echo": secret})

    return handle


def _secret_in_error(err: BaseException, secret: str) -> list[str]:
    """Where ``secret`` appears: the error and each error on its chain, their str/repr/attributes."""
    found: list[str] = []
    seen: set[int] = set()
    todo: list[tuple[str, BaseException]] = [("error", err)]
    while todo:
        where, e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        for label, text in (("str", str(e)), ("repr", repr(e))):
            if secret in text:
                found.append(f"{where} {label}")
        for name, value in vars(e).items():
            if secret in repr(value) or (isinstance(value, (bytes, str)) and secret in str(value)):
                found.append(f"{where}.{name}")
        for arg in e.args:
            if secret in repr(arg):
                found.append(f"{where}.args")
        for link in ("__cause__", "__context__"):
            nxt = getattr(e, link)
            if nxt is not None:
                todo.append((f"{where}.{link}", nxt))
    return found


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
    #: The provider talks HTTP to ``base_url`` (enables the key-echo checks).
    http_wire: ClassVar[bool] = True

    def echo_lm(self, lm: dsrs.LM, base_url: str, api_key: str | None) -> dsrs.LM | None:
        """``lm`` pointed at the kit's key-echoing server (``None`` skips the key-echo checks)."""
        return lm.with_base_url(base_url).with_api_key(api_key)

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

    def test_tools_are_sent(self, lm: dsrs.LM) -> None:
        if not self.supports_tools:
            pytest.skip("provider has no tools")
        tool = dsrs.Tool(
            "lookup",
            "Look a word up.",
            {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
        )
        r = lm.call(self.prompt, tools=[tool])
        assert isinstance(r.text, str)
        assert all(isinstance(c, dsrs.ToolCall) and c.name for c in r.tool_calls)
        assert r.text.strip() or r.tool_calls, "neither text nor a tool call came back"

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

    @pytest.mark.parametrize("status", [401, 500])
    @pytest.mark.parametrize("key_from", ["api_key", "environment"])
    @pytest.mark.parametrize("streamed", [False, True], ids=["call", "stream"])
    def test_echoed_key_never_in_the_error(
        self, lm: dsrs.LM, status: int, key_from: str, streamed: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if not self.http_wire:
            pytest.skip("provider does not talk HTTP to a base_url")
        if streamed and not self.supports_streaming:
            pytest.skip("provider does not stream")
        spec = next(s for s in dsrs.providers() if s.name == self.provider_name)
        if key_from == "environment":
            key_vars = [v for v in spec.env_vars if v.endswith(("_KEY", "_TOKEN"))]
            if not key_vars:
                pytest.skip("provider reads no key from the environment")
            for var in key_vars:
                monkeypatch.setenv(var, ENV_SECRET)
            secret, api_key = ENV_SECRET, None
        else:
            secret, api_key = SECRET, SECRET
        with LoopbackServer(_echo_keys(status, secret)) as srv:
            target = self.echo_lm(lm, srv.url, api_key)
            if target is None:
                pytest.skip("no echo_lm for this provider")
            target = target.with_timeout(10)

            def send() -> object:
                return "".join(target.stream(self.prompt)) if streamed else target.call(self.prompt)

            with pytest.raises(LMError) as info:
                send()
            sent = " ".join(v for r in srv.requests for v in r.headers.values())
        if srv.requests:
            assert secret in sent, "the key was not sent, so this check proved nothing"
        found = _secret_in_error(info.value, secret)
        assert not found, f"the key appears in the error: {found}"

    def test_probe_answers(self) -> None:
        spec = next(s for s in dsrs.providers() if s.name == self.provider_name)
        result = asyncio.run(spec.load().probe(spec, 2.0))
        assert isinstance(result, dsrs.ProbeResult)
        assert isinstance(result.configured, bool)
