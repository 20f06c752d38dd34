"""``dsrs.LM``: an immutable model configuration that can be called.

>>> lm = LM("fake:echo", temperature=0.2).with_max_tokens(64).with_seed(7)
>>> lm.call("hello there").text
'hello there'
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from dsrs import _portal
from dsrs._failures import classify_failure
from dsrs._provider import Provider, ProviderConfig
from dsrs._registry import ResolvedModel, get_registry
from dsrs._usage import Cost, LmUsage, UsageRecord
from dsrs.errors import LMError
from dsrs.plugins._manager import get_host
from dsrs.plugins._types import ProviderFailure
from dsrs.types import (
    LMRequest,
    LMResponse,
    MessagesInput,
    ResponseFormat,
    StreamChunk,
    Tool,
    normalize_messages,
)

__all__ = ["LM", "LMStream"]


class LM(BaseModel):
    """A language model: which one, where, and with which settings. Immutable; ``with_*`` copies.

    ``model`` is ``"provider:model"``, ``"provider/model"`` or a bare name a provider claims
    (``"gpt-4o"``). With ``base_url`` and no known prefix, any OpenAI-compatible server is used.
    Extra keyword arguments are provider options sent with every request (``num_ctx=8192``,
    ``top_p=0.9``, ``reasoning_effort="low"``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model: str
    base_url: str | None = None
    api_key: SecretStr | None = Field(default=None, repr=False)
    temperature: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, gt=0)
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    cache: bool = False
    timeout: float | None = Field(default=None, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)

    _resolved: ResolvedModel | None = PrivateAttr(default=None)
    _provider: Provider | None = PrivateAttr(default=None)

    def __init__(
        self,
        model: str,
        /,
        *,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: Sequence[str] | str | None = None,
        cache: bool = False,
        timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
        **provider_options: Any,
    ) -> None:
        if isinstance(stop, str):
            stop = (stop,)
        super().__init__(
            model=model,
            base_url=base_url,
            api_key=api_key,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            stop=tuple(stop) if stop is not None else None,
            cache=cache,
            timeout=timeout,
            options={**(options or {}), **provider_options},
        )

    @field_validator("model")
    @classmethod
    def _model_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("model must not be empty")
        return v.strip()

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v

    # --- fluent copies --------------------------------------------------------------------

    def _replace(self, **changes: Any) -> LM:
        data: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": self.stop,
            "cache": self.cache,
            "timeout": self.timeout,
            "options": dict(self.options),
        }
        data.update(changes)
        # type(self): subclasses (e.g. dsrs_pylon.PylonLM) keep their type through with_* copies.
        return type(self)(changes.get("model", self.model), **{k: v for k, v in data.items() if k != "model"})

    def with_model(self, model: str) -> LM:
        return self._replace(model=model)

    def with_cache(self, enabled: bool = True) -> LM:
        return self._replace(cache=enabled)

    def with_temperature(self, temperature: float | None) -> LM:
        return self._replace(temperature=temperature)

    def with_max_tokens(self, max_tokens: int | None) -> LM:
        return self._replace(max_tokens=max_tokens)

    def with_seed(self, seed: int | None) -> LM:
        return self._replace(seed=seed)

    def with_stop(self, *stop: str) -> LM:
        return self._replace(stop=stop or None)

    def with_base_url(self, base_url: str | None) -> LM:
        return self._replace(base_url=base_url)

    def with_api_key(self, api_key: str | None) -> LM:
        return self._replace(api_key=api_key)

    def with_timeout(self, timeout: float | None) -> LM:
        return self._replace(timeout=timeout)

    def with_num_ctx(self, num_ctx: int) -> LM:
        """Context window size for servers that take one (Ollama ``options.num_ctx``, llama.cpp)."""
        if num_ctx <= 0:
            raise ValueError(f"num_ctx must be positive, got {num_ctx}")
        return self.with_options(num_ctx=num_ctx)

    def with_options(self, **options: Any) -> LM:
        """Copy with provider options added (a value of ``None`` removes that option)."""
        merged = {**self.options, **options}
        return self._replace(options={k: v for k, v in merged.items() if v is not None})

    # --- resolution -----------------------------------------------------------------------

    @property
    def resolved(self) -> ResolvedModel:
        """The provider spec and provider-native model name this LM resolves to."""
        # Private attributes read through ``__pydantic_private__``: pydantic's ``__getattr__`` costs
        # about a microsecond per read, and this sits on every call.
        resolved: ResolvedModel | None = self.__pydantic_private__["_resolved"]  # type: ignore[index]
        if resolved is None:
            resolved = self._resolved = get_registry().resolve(self.model, base_url=self.base_url)
        return resolved

    @property
    def provider_name(self) -> str:
        return self.resolved.spec.name

    @property
    def canonical_model(self) -> str:
        return self.resolved.canonical

    def provider(self) -> Provider:
        """The provider instance serving this LM (created on first use, then reused)."""
        provider: Provider | None = self.__pydantic_private__["_provider"]  # type: ignore[index]
        if provider is not None:
            return provider
        if self._provider is None:
            resolved = self.resolved
            cls = resolved.spec.load()
            config = ProviderConfig(
                base_url=self.base_url,
                api_key=self.api_key.get_secret_value() if self.api_key is not None else None,
                timeout=self.timeout,
                options=self.options,
            )
            self._provider = cls(resolved.spec, config)
        return self._provider

    # --- requests -------------------------------------------------------------------------

    def build_request(
        self,
        messages: MessagesInput,
        *,
        response_format: ResponseFormat | None = None,
        tools: Sequence[Tool] = (),
        tool_choice: str | Mapping[str, Any] | None = None,
        **options: Any,
    ) -> LMRequest:
        """The final request a call would send (what the cache key is computed from)."""
        resolved = self.resolved
        return LMRequest(
            provider=resolved.spec.name,
            model=resolved.model,
            messages=normalize_messages(messages),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
            stop=self.stop,
            response_format=response_format,
            tools=tuple(tools),
            tool_choice=tool_choice,
            options={**self.options, **options} if options else self.options,
            # The endpoint the provider resolved (env var or default) when the LM names none, so
            # two servers chosen through the environment never share cache entries.
            base_url=self.base_url if self.base_url is not None else self.provider().config.base_url,
        )

    async def acall(self, messages: MessagesInput, **kwargs: Any) -> LMResponse:
        """Send ``messages`` (a prompt string or a list of messages) and return the answer."""
        return await self.acomplete(self.build_request(messages, **kwargs))

    def call(self, messages: MessagesInput, **kwargs: Any) -> LMResponse:
        """Sync twin of :meth:`acall`; works inside a running event loop too."""
        return _portal.run_sync(self.acall(messages, **kwargs))

    __call__ = call

    async def acomplete(self, request: LMRequest) -> LMResponse:
        """Answer a prepared :class:`LMRequest` (cache, provider, cost, usage record)."""
        provider = self.provider()
        key = None
        if self.cache:
            from dsrs._cache import get_cache

            key = request.cache_key()
            hit = await get_cache().aget(key)
            if hit is not None:
                response = replace(hit, usage=hit.usage.as_cache_hit())
                _record(self, request, response, 0.0)
                return response
        t0 = time.perf_counter()
        try:
            response = await provider.acomplete(request)
        except LMError:
            raise
        except Exception as exc:
            raise _unexpected(provider, request, exc) from exc
        response = _finish(self, request, response, time.perf_counter() - t0)
        if key is not None:
            from dsrs._cache import get_cache

            await get_cache().aset(key, response)
        return response

    def astream(self, messages: MessagesInput, **kwargs: Any) -> LMStream:
        """``async for delta in lm.astream(prompt)``; then ``.response`` / ``.usage``."""
        return LMStream(self, self.build_request(messages, **kwargs))

    def stream(self, messages: MessagesInput, **kwargs: Any) -> LMStream:
        """``for delta in lm.stream(prompt)``; then ``.response`` / ``.usage``. Works in a running loop."""
        return LMStream(self, self.build_request(messages, **kwargs))

    async def aclose(self) -> None:
        if self._provider is not None:
            await self._provider.aclose()

    def __repr__(self) -> str:
        parts = [repr(self.model)]
        for name in ("base_url", "temperature", "max_tokens", "seed", "stop", "timeout"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        if self.cache:
            parts.append("cache=True")
        if self.api_key is not None:
            parts.append("api_key=***")
        parts.extend(f"{k}={v!r}" for k, v in self.options.items())
        return f"LM({', '.join(parts)})"

    __str__ = __repr__


def _unexpected(provider: Provider, request: LMRequest, exc: Exception) -> LMError:
    return classify_failure(
        ProviderFailure(
            provider=provider.name,
            model=request.model,
            exception=exc,
            message=f"{type(exc).__name__}: {exc}",
            secrets=provider.config.secrets(),
        )
    )


def _finish(lm: LM, request: LMRequest, response: LMResponse, elapsed: float) -> LMResponse:
    """Fill provider/model, price the call through ``dsrs_cost``, and report it to the sinks."""
    usage = original = response.usage
    if usage.cost_msats is None and usage.cost_usd is None:
        cost = get_host().hooks.cost(f"{request.provider}:{request.model}", usage)
        if cost is not None:  # ``None`` keeps the cost unknown, as it already is: no copy
            usage = usage.with_cost(cost)
    elif usage.cost_msats is None or usage.cost_usd is None:
        usage = usage.with_cost(Cost(usage.cost_usd, usage.cost_msats))
    if usage.calls == 0:
        usage = replace(usage, calls=1)
    # Copy only when something changed (dataclasses.replace costs a few microseconds).
    if usage is not original or response.provider != request.provider or not response.model:
        response = replace(
            response,
            usage=usage,
            provider=request.provider,
            model=response.model or request.model,
        )
    _record(lm, request, response, elapsed)
    return response


def _record(lm: LM, request: LMRequest, response: LMResponse, elapsed: float) -> None:
    h = get_host().hooks
    if h.has_usage_sinks:
        h.usage_recorded(
            UsageRecord(
                provider=request.provider,
                model=request.model,
                usage=response.usage,
                lane=response.lane,
                latency_s=elapsed,
                timestamp=time.time(),
            )
        )


class LMStream:
    """A streamed answer: iterate (sync or async) for text deltas, then read ``response``."""

    def __init__(self, lm: LM, request: LMRequest) -> None:
        self._lm = lm
        self.request = request
        self.response: LMResponse | None = None
        self.reasoning = ""

    @property
    def usage(self) -> LmUsage | None:
        return self.response.usage if self.response is not None else None

    async def _chunks(self) -> AsyncIterator[StreamChunk]:
        lm, request = self._lm, self.request
        provider = lm.provider()
        key = None
        if lm.cache:
            from dsrs._cache import get_cache

            key = request.cache_key()
            hit = await get_cache().aget(key)
            if hit is not None:
                response = replace(hit, usage=hit.usage.as_cache_hit())
                _record(lm, request, response, 0.0)
                yield StreamChunk(text=response.text, reasoning=response.reasoning or "", response=response)
                return
        t0 = time.perf_counter()
        final: LMResponse | None = None
        try:
            async for chunk in provider.astream(request):
                if chunk.response is not None:
                    final = chunk.response
                if chunk.text or chunk.reasoning:
                    yield StreamChunk(text=chunk.text, reasoning=chunk.reasoning)
        except LMError:
            raise
        except Exception as exc:
            raise _unexpected(provider, request, exc) from exc
        if final is None:
            raise _unexpected(provider, request, RuntimeError("stream ended without a final response"))
        final = _finish(lm, request, final, time.perf_counter() - t0)
        if key is not None:
            from dsrs._cache import get_cache

            await get_cache().aset(key, final)
        yield StreamChunk(response=final)

    async def __aiter__(self) -> AsyncIterator[str]:
        async for chunk in self._chunks():
            if chunk.reasoning:
                self.reasoning += chunk.reasoning
            if chunk.response is not None:
                self.response = chunk.response
            if chunk.text:
                yield chunk.text

    def __iter__(self) -> Iterator[str]:
        return _portal.iterate_sync(self.__aiter__())

    def text(self) -> str:
        """Consume the stream (sync) and return the whole text."""
        return "".join(self)
