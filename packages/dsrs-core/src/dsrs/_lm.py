"""``dsrs.LM``: an immutable model configuration that can be called.

>>> lm = LM("fake:echo", temperature=0.2).with_max_tokens(64).with_seed(7)
>>> lm.call("hello there").text
'hello there'
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from dsrs import _calllog, _ledger, _otel, _portal, _runtime, _validate
from dsrs._builtin._plugin import dsrs_usage_recorded as _builtin_sink
from dsrs._failures import classify_failure
from dsrs._lanemux.policies import RetryPolicy
from dsrs._provider import Provider, ProviderConfig
from dsrs._registry import ResolvedModel, get_registry
from dsrs._tools import as_tools
from dsrs._usage import Cost, LmUsage, UsageRecord
from dsrs.errors import LMError, LMTimeoutError, ProviderFailure, ResponseParseError
from dsrs.plugins._manager import Hooks, get_host
from dsrs.types import (
    LMRequest,
    LMResponse,
    MessagesInput,
    ResponseFormat,
    StreamChunk,
    Tool,
    normalize_messages,
)

__all__ = [
    "DEFAULT_RETRIES",
    "LM",
    "LMStream",
    "REQUEST_FIELDS",
]

T = TypeVar("T")

#: Call options that override the LM's own settings rather than becoming provider options.
REQUEST_FIELDS = frozenset({"temperature", "max_tokens", "seed", "stop"})
#: A plain LM retries retryable failures (5xx, timeouts, 429 with a short Retry-After) like this.
DEFAULT_RETRIES = RetryPolicy(max_attempts=3, base_delay=0.25, max_delay=8.0)
_NO_RETRIES = RetryPolicy(max_attempts=1)
#: Token counts above this are not a real answer (no model reads or writes 100M tokens per call).
_MAX_SANE_TOKENS = 100_000_000
_NO_USAGE = LmUsage()


_otel.instrument_from_env()

_LM_FIELDS = (
    "base_url",
    "api_key",
    "temperature",
    "max_tokens",
    "seed",
    "stop",
    "cache",
    "timeout",
    "options",
    "retries",
)


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
    _retries: RetryPolicy = PrivateAttr(default=DEFAULT_RETRIES)
    _supports_rf: bool | None = PrivateAttr(default=None)

    def __init__(
        self,
        model: str | None = None,
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
        retries: RetryPolicy | int | None = None,
        **provider_options: Any,
    ) -> None:
        if "model" in provider_options:
            if model is not None:
                raise TypeError("LM() got the model twice (positionally and as model=)")
            model = provider_options.pop("model")
        if model is None:
            raise TypeError("LM() needs a model, e.g. dsrs.LM('openai:gpt-4o-mini') or dsrs.LM(model='gpt-4o-mini')")
        if not isinstance(model, str):
            raise _validate.InvalidTypeError("model", model, "a str like 'provider:model'")
        if not model.strip() or model.strip().endswith((":", "/")):
            raise _validate.InvalidValueError(
                "model", model, "a model name like 'openai:gpt-4o-mini' (model must not be empty)"
            )
        _check_typos(provider_options)
        if api_key is not None and not isinstance(api_key, (str, SecretStr)):
            raise _validate.InvalidTypeError("api_key", api_key, "a str")
        if not isinstance(cache, bool):
            raise _validate.InvalidTypeError("cache", cache, "True or False")
        if options is not None and not isinstance(options, Mapping):
            raise _validate.InvalidTypeError("options", options, "a dict of provider options")
        if timeout is not None:
            _validate.check_number("timeout", timeout, low=0.0)
            if timeout <= 0:
                raise _validate.InvalidValueError("timeout", timeout, "a number of seconds > 0")
        if base_url is not None and not isinstance(base_url, str):
            raise _validate.InvalidTypeError("base_url", base_url, "a str like 'http://host:port/v1'")
        super().__init__(
            model=model,
            base_url=base_url,
            api_key=api_key,
            temperature=_validate.check_temperature(temperature),
            max_tokens=_validate.check_max_tokens(max_tokens),
            seed=_validate.check_int("seed", seed),
            stop=_validate.check_stop(stop),
            cache=cache,
            timeout=timeout,
            options={**(options or {}), **provider_options},
        )
        self._retries = _retry_policy(retries)

    @field_validator("model")
    @classmethod
    def _model_not_empty(cls, v: str) -> str:
        if not v.strip() or v.strip().endswith((":", "/")):
            raise ValueError(f"model must name a model (like 'openai:gpt-4o-mini'), got {v!r}")
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
            "retries": self.retries,
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

    def with_retries(self, retries: RetryPolicy | int | None) -> LM:
        """Copy with another retry policy (an int = that many retries; 0 or ``None`` = none)."""
        return self._replace(retries=retries)

    @property
    def retries(self) -> RetryPolicy:
        """How a call on this LM alone retries retryable failures (a LaneMux uses its own policy)."""
        return self.__pydantic_private__["_retries"]  # type: ignore[index,no-any-return]

    def with_num_ctx(self, num_ctx: int) -> LM:
        """Context window size for servers that take one (Ollama ``options.num_ctx``, llama.cpp)."""
        return self.with_options(num_ctx=_validate.check_int("num_ctx", num_ctx, minimum=1))

    def with_options(self, **options: Any) -> LM:
        """Copy with provider options added (a value of ``None`` removes that option)."""
        _check_typos(options)
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

    @property
    def supports_response_format(self) -> bool:
        """Whether this LM's provider sends structured output (``response_format``) natively."""
        known: bool | None = self.__pydantic_private__["_supports_rf"]  # type: ignore[index]
        if known is None:
            try:
                known = bool(self.resolved.spec.load().supports_response_format)
            except Exception:
                known = False
            self._supports_rf = known
        return known

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
        tools: Sequence[Tool | Callable[..., Any]] = (),
        tool_choice: str | Mapping[str, Any] | None = None,
        **options: Any,
    ) -> LMRequest:
        """The final request a call would send (what the cache key is computed from).

        ``temperature``, ``max_tokens``, ``seed`` and ``stop`` override the LM's settings for this
        call; other keywords are provider options.
        """
        resolved = self.resolved
        temperature, max_tokens, seed, stop = self.temperature, self.max_tokens, self.seed, self.stop
        if options and not REQUEST_FIELDS.isdisjoint(options):
            options = dict(options)
            if "temperature" in options:
                temperature = _validate.check_temperature(options.pop("temperature"))
            if "max_tokens" in options:
                max_tokens = _validate.check_max_tokens(options.pop("max_tokens"))
            if "seed" in options:
                seed = _validate.check_int("seed", options.pop("seed"))
            if "stop" in options:
                stop = _validate.check_stop(options.pop("stop"))
        if options:
            _check_typos(options)
        if response_format is not None and not isinstance(response_format, ResponseFormat):
            raise _validate.InvalidTypeError("response_format", response_format, "a dsrs.ResponseFormat")
        return LMRequest(
            provider=resolved.spec.name,
            model=resolved.model,
            messages=normalize_messages(messages),
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            stop=stop,
            response_format=response_format,
            tools=as_tools(tools) if tools else (),
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

    async def acall_parsed(
        self, messages: MessagesInput, parse: Callable[[LMResponse], T], **kwargs: Any
    ) -> tuple[LMResponse, T, LmUsage]:
        """Call, then ``parse`` the answer (e.g. an adapter's parser); returns (response, value, usage).
        A parse failure raises with the provider and model filled in."""
        response = await self.acomplete(self.build_request(messages, **kwargs))
        try:
            value = parse(response)
        except LMError as exc:
            exc.provider = exc.provider or response.provider
            exc.model = exc.model or response.model
            raise
        return response, value, response.usage

    async def cached(
        self, request: LMRequest, *, lane: str | None = None, request_id: str = "", attempt: int = 1
    ) -> LMResponse | None:
        """The cached answer to ``request`` (marked as a hit, costing nothing), or ``None``."""
        if not self.cache:
            return None
        from dsrs._cache import get_cache

        hit = await get_cache().aget(request.cache_key())
        if hit is None:
            return None
        response = replace(hit, usage=hit.usage.as_cache_hit(), lane=lane)  # the lane asking now
        _record(request, response, 0.0, lane, request_id, attempt)
        if _otel.tracer is not None:
            _otel.cache_hit(request, response, lane, request_id, attempt)
        return response

    async def acomplete(
        self,
        request: LMRequest,
        *,
        read_cache: bool = True,
        retry: bool = True,
        lane: str | None = None,
        request_id: str = "",
        attempt: int = 1,
    ) -> LMResponse:
        """Answer a prepared :class:`LMRequest`: cache, provider (with this LM's retries), usage
        checks, cost and the usage record. A LaneMux calls it with ``read_cache=False`` (it asked
        :meth:`cached` first) and ``retry=False`` (its own policy retries)."""
        if read_cache and self.cache:
            hit = await self.cached(request, lane=lane, request_id=request_id, attempt=attempt)
            if hit is not None:
                return hit
        # Private attributes read through __pydantic_private__: pydantic's __getattr__ costs ~1 µs.
        policy: RetryPolicy = self.__pydantic_private__["_retries"] if retry else _NO_RETRIES  # type: ignore[index]
        request_id = request_id or new_request_id()
        timeout = self.timeout
        if timeout is None or policy.max_attempts == 1:
            return await self._attempts(request, policy, lane, request_id, attempt, None)
        # ``timeout`` is the whole call's deadline: retries happen within it, never after it.
        deadline = time.monotonic() + timeout
        try:
            return await asyncio.wait_for(self._attempts(request, policy, lane, request_id, attempt, deadline), timeout)
        except asyncio.TimeoutError:
            raise LMTimeoutError(
                f"no answer within the LM's timeout of {timeout:g}s (retries included)",
                provider=request.provider,
                model=request.model,
            ) from None

    async def _attempts(
        self,
        request: LMRequest,
        policy: RetryPolicy,
        lane: str | None,
        request_id: str,
        attempt: int,
        deadline: float | None,
    ) -> LMResponse:
        provider = self.provider()
        tries = 1
        while True:
            t0 = time.perf_counter()
            try:
                try:
                    if _otel.tracer is None:
                        response = await provider.acomplete(request)
                        response = _finish(request, response, time.perf_counter() - t0, lane, request_id, attempt)
                    else:
                        with _otel.attempt(request, lane, attempt, request_id) as span:
                            response = await provider.acomplete(request)
                            response = _finish(request, response, time.perf_counter() - t0, lane, request_id, attempt)
                            span.ok(response)
                except LMError:
                    raise
                except Exception as exc:  # a provider bug: typed, with the provider's secrets masked
                    raise _unexpected(provider, request, exc) from exc
            except LMError as exc:
                _record_failure(request, exc, time.perf_counter() - t0, lane, request_id, attempt)
                delay = policy.delay(tries, exc.retry_after) if _retry_here(exc) else None
                if delay is None or (deadline is not None and time.monotonic() + delay >= deadline):
                    raise
                await asyncio.sleep(delay)
                tries += 1
                attempt += 1
                continue
            if self.cache:
                await _store(request, response)
            return response

    async def abatch(
        self,
        prompts: Sequence[MessagesInput],
        *,
        concurrency: int = 16,
        progress: bool = True,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Answer every prompt, at most ``concurrency`` at a time, in input order (see
        :mod:`dsrs._batch`: budgets, progress, ``BatchError``)."""
        from dsrs._batch import run_batch

        async def one(prompt: MessagesInput) -> LMResponse:
            return await self.acall(prompt, **kwargs)

        return await run_batch(
            prompts,
            one,
            usage_of=lambda r: r.usage,
            concurrency=concurrency,
            progress=progress,
            return_exceptions=return_exceptions,
            description=self.model,
        )

    def batch(self, prompts: Sequence[MessagesInput], **kwargs: Any) -> list[Any]:
        """Sync twin of :meth:`abatch` (works inside a running event loop too)."""
        return _portal.run_sync(self.abatch(prompts, **kwargs))

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


_ids = itertools.count(1)
_id_prefix = os.urandom(6).hex()


def _new_prefix() -> None:
    global _id_prefix
    _id_prefix = os.urandom(6).hex()  # a forked child must not repeat its parent's ids


_runtime.on_fork(function=_new_prefix)


def new_request_id() -> str:
    """A process-unique id for one call (all its attempts share it): random prefix + counter."""
    return f"{_id_prefix}{next(_ids):08x}"


def _retry_policy(retries: RetryPolicy | int | None) -> RetryPolicy:
    if retries is None:
        env = os.environ.get("DSRS_RETRIES")
        if not env:
            return DEFAULT_RETRIES
        try:
            retries = int(env)
        except ValueError:
            raise _validate.InvalidValueError("DSRS_RETRIES", env, "a whole number of retries (0 = none)") from None
    if isinstance(retries, RetryPolicy):
        return retries
    n = _validate.check_int("retries", retries, minimum=0)
    assert n is not None
    return _NO_RETRIES if n == 0 else replace(DEFAULT_RETRIES, max_attempts=n + 1)


def _retry_here(exc: LMError) -> bool:
    """A plain LM retries retryable failures, but no 4xx other than 429 (and 408)."""
    if not exc.retryable:
        return False
    status = exc.status
    return status is None or status >= 500 or status in (408, 429)


def _check_typos(options: Mapping[str, Any]) -> None:
    """Refuse a provider option that is a misspelt LM setting (``temprature=``)."""
    for name in options:
        if name in _LM_FIELDS:
            continue
        match = _validate.closest(name, _LM_FIELDS, cutoff=0.8)
        if match is not None:
            raise _validate.UnknownParameterError(
                "LM", name, match, " (to send a provider option of that name as it is, use options={...})"
            )


def _unexpected(provider: Provider, request: LMRequest, exc: Exception) -> LMError:
    secrets = getattr(provider, "secrets", None)
    return classify_failure(
        ProviderFailure(
            provider=provider.name,
            model=request.model,
            exception=exc,
            message=f"{type(exc).__name__}: {exc}",
            secrets=secrets() if callable(secrets) else provider.config.secrets(),
        )
    )


def _check_usage(request: LMRequest, usage: LmUsage) -> None:
    """Usage a server reports is checked before it is billed: negative counts, counts no request
    could produce, or a negative cost are a ResponseParseError (a lane fault), never a cost."""
    counts = (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
        usage.cached_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    )
    try:
        sane = min(counts) >= 0 and max(counts) <= _MAX_SANE_TOKENS
    except TypeError:  # None, a str, a dict where a count belongs
        sane = False
    if not sane:
        bad = next((f"{n}={str(v)[:40]}" for n, v in zip(_COUNT_NAMES, counts, strict=True) if not _sane_count(v)), "?")
        raise ResponseParseError(
            f"the server reported an impossible usage figure: {bad}", provider=request.provider, model=request.model
        )
    cap = request.max_tokens
    if cap is not None and usage.completion_tokens > cap + max(16, cap // 10):
        raise ResponseParseError(
            f"the server reported {usage.completion_tokens} completion tokens for a call capped at {cap}",
            provider=request.provider,
            model=request.model,
        )
    if usage.cost_msats is None and usage.cost_usd is None:
        return  # the common case: the cost is priced later, by dsrs_cost
    for name, cost in (("cost_msats", usage.cost_msats), ("cost_usd", usage.cost_usd)):
        if cost is not None and (not math.isfinite(cost) or cost < 0):
            raise ResponseParseError(
                f"the provider reported a negative or non-finite {name}", provider=request.provider, model=request.model
            )


_COUNT_NAMES = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def _sane_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_SANE_TOKENS


def _finish(
    request: LMRequest, response: LMResponse, elapsed: float, lane: str | None, request_id: str, attempt: int
) -> LMResponse:
    """Check the usage, fill provider/model (and the lane, when a LaneMux asked), price the call
    through ``dsrs_cost``, record it."""
    usage = original = response.usage
    _check_usage(request, usage)
    if not isinstance(response.text, str):
        raise ResponseParseError(
            f"the answer's text is a {type(response.text).__name__}, not a str",
            provider=request.provider,
            model=request.model,
        )
    hooks = get_host().hooks
    if usage.cost_msats is None and usage.cost_usd is None:
        cost = hooks.cost(f"{request.provider}:{request.model}", usage)
        if cost is not None:  # ``None`` keeps the cost unknown, as it already is: no copy
            usage = usage.with_cost(cost)
    elif usage.cost_msats is None or usage.cost_usd is None:
        usage = usage.with_cost(Cost(usage.cost_usd, usage.cost_msats))
    if usage.calls == 0:
        usage = replace(usage, calls=1)
    # Copy only when something changed, with a direct constructor call (dataclasses.replace's
    # generic field walk costs several microseconds on every call).
    if lane is None:
        lane = response.lane
    if usage is not original or response.provider != request.provider or not response.model or response.lane != lane:
        response = LMResponse(
            response.text,
            usage,
            response.tool_calls,
            response.reasoning,
            response.finish_reason,
            response.raw_usage,
            request.provider,
            response.model or request.model,
            lane,
            response.provider_state,
        )
    _record(request, response, elapsed, lane, request_id, attempt, hooks=hooks)
    return response


async def _store(request: LMRequest, response: LMResponse) -> None:
    """Cache a paid answer; a failure to store it is a warning, never a lost answer."""
    from dsrs._cache import CacheWarning, get_cache

    try:
        await get_cache().aset(request.cache_key(), response)
    except Exception as exc:
        warnings.warn(
            f"dsrs: the answer from {request.provider}:{request.model} was not cached ({type(exc).__name__}: "
            f"{str(exc)[:200]}); it is returned and its cost recorded",
            CacheWarning,
            stacklevel=3,
        )


def _record(
    request: LMRequest,
    response: LMResponse | None,
    elapsed: float,
    lane: str | None,
    request_id: str,
    attempt: int,
    error: LMError | None = None,
    hooks: Hooks | None = None,
) -> None:
    """One attempt for the usage sinks: the answer, or the error class of a failure."""
    h = hooks if hooks is not None else get_host().hooks
    sinks = h.usage_sinks()
    if not sinks:
        return
    lane = lane or (response.lane if response is not None else None)
    usage = response.usage if response is not None else _NO_USAGE
    error_name = type(error).__name__ if error is not None else None
    if len(sinks) == 1 and sinks[0].function is _builtin_sink and not _calllog.enabled():
        # Only dsrs-core's own sink, the local ledger: its row straight from these fields (a
        # UsageRecord and the hook call cost more than the row itself).
        _ledger.record_call(request.provider, request.model, lane, request_id, attempt, elapsed, usage, error_name)
        return
    h.usage_recorded(
        UsageRecord(
            provider=request.provider,
            model=request.model,
            usage=usage,
            lane=lane,
            latency_s=elapsed,
            timestamp=time.time(),
            request_id=request_id,
            attempt=attempt,
            error=error_name,
            request=request,
            response=response,
        ),
    )


def _record_failure(
    request: LMRequest, exc: LMError, elapsed: float, lane: str | None, request_id: str, attempt: int
) -> None:
    _record(request, None, elapsed, lane, request_id, attempt, exc)


class LMStream:
    """A streamed answer: iterate (sync or async) for text deltas, then read ``response``."""

    def __init__(
        self,
        lm: LM,
        request: LMRequest,
        *,
        read_cache: bool = True,
        lane: str | None = None,
        request_id: str = "",
        attempt: int = 1,
    ) -> None:
        self._lm = lm
        self.request = request
        self.response: LMResponse | None = None
        self.reasoning = ""
        self._read_cache = read_cache
        self._meta = (lane, request_id or new_request_id(), attempt)

    @property
    def usage(self) -> LmUsage | None:
        return self.response.usage if self.response is not None else None

    async def _chunks(self) -> AsyncIterator[StreamChunk]:
        lm, request = self._lm, self.request
        lane, request_id, attempt = self._meta
        if self._read_cache and lm.cache:
            hit = await lm.cached(request, lane=lane, request_id=request_id, attempt=attempt)
            if hit is not None:
                yield StreamChunk(text=hit.text, reasoning=hit.reasoning or "", response=hit)
                return
        provider = lm.provider()
        t0 = time.perf_counter()
        final: LMResponse | None = None
        span = _otel.stream_attempt(request, lane, attempt, request_id) if _otel.tracer is not None else None
        try:
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
                raise ResponseParseError(
                    "the stream ended without its final chunk", provider=request.provider, model=request.model
                )
            final = _finish(request, final, time.perf_counter() - t0, lane, request_id, attempt)
            if span is not None:
                span.ok(final)
        except LMError as exc:
            _record_failure(request, exc, time.perf_counter() - t0, lane, request_id, attempt)
            if span is not None:
                span.failed(exc)
            raise
        except BaseException as exc:  # cancelled, or the consumer stopped early (GeneratorExit)
            if span is not None and not isinstance(exc, GeneratorExit):
                span.failed(exc)
            raise
        finally:
            if span is not None:
                span.end()
        if lm.cache:
            await _store(request, final)
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
