"""Which LM (or :class:`dsrs.LaneMux`) and adapter a program uses: ``configure`` and ``context``.

Settings live in a :class:`contextvars.ContextVar`, so concurrent asyncio tasks (and threads) can
use different models::

    dsrs.configure(dsrs.LM("gpt-4o-mini"))                 # the default from here on
    dsrs.configure_with_adapter(lm, dsrs.JSONAdapter())    # the same, with an adapter
    with dsrs.context(lm=dsrs.LM("fake:echo")):            # only inside the block (this task)
        ...

:func:`configure` sets the value for the current context *and* makes it the process default seen by
threads and tasks that never configured anything themselves; :func:`context` changes only the
current context (a task, a thread, or the code inside the ``with``) and restores it afterwards.
Sync twins (``Predict.forward``) carry the caller's settings onto dsrs's background loop.
"""

from __future__ import annotations

import contextvars
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from dsrs import _runtime
from dsrs.errors import LMError

if TYPE_CHECKING:
    from dsrs._adapters import Adapter
    from dsrs._redis_state.state import SharedState
    from dsrs.types import LMResponse, MessagesInput

__all__ = [
    "LanguageModel",
    "NotConfiguredError",
    "Settings",
    "configure",
    "configure_with_adapter",
    "context",
    "current",
    "reset",
]

T = TypeVar("T")


@runtime_checkable
class LanguageModel(Protocol):
    """What :func:`configure` accepts: a :class:`dsrs.LM` or a :class:`dsrs.LaneMux`."""

    async def acall(self, messages: MessagesInput, **kwargs: Any) -> LMResponse: ...

    def call(self, messages: MessagesInput, **kwargs: Any) -> LMResponse: ...

    def astream(self, messages: MessagesInput, **kwargs: Any) -> Any: ...

    def stream(self, messages: MessagesInput, **kwargs: Any) -> Any: ...


class NotConfiguredError(LMError, RuntimeError):
    """No LM was given and none is configured (``dsrs.configure(...)``)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The settings in force: ``lm`` (an LM or LaneMux) and ``adapter`` (``None``: ChatAdapter)."""

    lm: LanguageModel | None = None
    adapter: Adapter | None = None


_EMPTY = Settings()
_current: contextvars.ContextVar[Settings | None] = contextvars.ContextVar("dsrs_settings", default=None)


def current() -> Settings:
    """The settings of the current context (falling back to the process default on the runtime)."""
    s = _current.get()
    if s is None:
        return _runtime._current.settings or _EMPTY
    return s


def _check_lm(lm: object) -> None:
    if lm is not None and not isinstance(lm, LanguageModel):
        raise TypeError(f"expected a dsrs.LM or dsrs.LaneMux, got {type(lm).__name__}")


def configure(
    lm: LanguageModel | None = None, *, adapter: Adapter | None = None, state: SharedState | None = None
) -> None:
    """Use ``lm`` (an :class:`~dsrs.LM` or :class:`~dsrs.LaneMux`) and ``adapter`` from now on.

    Arguments left as ``None`` keep their current value. Affects the current context and becomes
    the default of the process.

    ``state`` shares the response cache, lane cooldowns, budgets and the usage ledger with other
    processes (``dsrs.RedisState(url)``, the ``dsrs-core[redis]`` extra): a LaneMux is attached to
    it, a plain LM gets its cache and ledger. With ``state`` omitted and ``DSRS_REDIS_URL`` set,
    the Redis state of that URL is used (an unreachable server is a clear error naming the variable).
    """
    _check_lm(lm)
    if state is None and lm is not None:
        state = _state_from_env()
    if state is not None and lm is not None:
        from dsrs._lanemux import LaneMux

        if isinstance(lm, LaneMux):
            state.attach(lm)
        else:
            state.install()
    base = current()
    new = Settings(lm=lm if lm is not None else base.lm, adapter=adapter if adapter is not None else base.adapter)
    _runtime.runtime().settings = new
    _current.set(new)


_env_states: dict[str, SharedState] = {}


def _state_from_env() -> SharedState | None:
    """The process's RedisState for ``DSRS_REDIS_URL`` (one per URL), or ``None`` when unset."""
    import os

    url = os.environ.get("DSRS_REDIS_URL", "").strip()
    if not url:
        return None
    state = _env_states.get(url)
    if state is None:
        from dsrs._redis_state import RedisState

        state = _env_states[url] = RedisState.from_env()
    return state


def configure_with_adapter(lm: LanguageModel, adapter: Adapter) -> None:
    """``configure(lm, adapter=adapter)``, as in the seed."""
    configure(lm, adapter=adapter)


def reset() -> None:
    """Forget every setting (the process default and this context's)."""
    _runtime.runtime().settings = None
    _current.set(None)


@contextmanager
def context(lm: LanguageModel | None = None, *, adapter: Adapter | None = None) -> Iterator[Settings]:
    """Within the block (and tasks started inside it), use ``lm``/``adapter``; restored on exit."""
    _check_lm(lm)
    base = current()
    new = Settings(lm=lm if lm is not None else base.lm, adapter=adapter if adapter is not None else base.adapter)
    token = _current.set(new)
    try:
        yield new
    finally:
        _current.reset(token)


async def _with_settings(settings: Settings, coro: Coroutine[Any, Any, T]) -> T:
    _current.set(settings)  # runs in its own task on the portal loop: nothing leaks
    return await coro


def run_sync_with_settings(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on dsrs's background loop with the caller's settings (for sync twins)."""
    from dsrs import _portal

    return _portal.run_sync(_with_settings(current(), coro))
