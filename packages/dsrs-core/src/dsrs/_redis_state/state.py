"""``RedisState``: the cache, lane health, budgets and usage ledger of many processes, in Redis.

>>> state = RedisState("redis://127.0.0.1:6379/0", namespace="myapp")   # doctest: +SKIP
>>> mux = state.attach(dsrs.LaneMux(budget_msats=50_000).add_lane(...))   # doctest: +SKIP
>>> dsrs.configure(mux)                                                  # doctest: +SKIP

``attach`` gives the mux the shared lane health and budgets and installs the shared cache and the
usage ledger for the process (``install()`` alone does the latter, for plain ``LM`` calls).

or ``RedisState.from_env()`` with ``DSRS_REDIS_URL`` (and ``DSRS_REDIS_NAMESPACE``,
``DSRS_REDIS_FAIL_OPEN``). Creating one checks that Redis answers and raises
:class:`RedisUnavailableError` naming where the URL came from when it does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dsrs import _runtime
from dsrs._cache import CacheBackend, LayeredCache, MemoryCache, set_cache
from dsrs._redis_state._link import RedisLink, RedisSettings
from dsrs._redis_state.budget import RedisBudgetStore
from dsrs._redis_state.cache import RedisCache
from dsrs._redis_state.lanes import RedisLaneState
from dsrs._redis_state.ledger import UsageLedger

if TYPE_CHECKING:
    from dsrs._budget import BudgetStore
    from dsrs._lanemux import LaneMux
    from dsrs._lanestate import LaneState

__all__ = ["RedisState", "SharedState"]


@runtime_checkable
class SharedState(Protocol):
    """What a shared-state provider offers a process (``RedisState`` is one).

    ``configure``-style wiring needs only this: ``state.attach(mux)`` for a LaneMux (lane health and
    budgets go to the shared stores; cache and usage ledger are installed), ``state.install()``
    for plain LMs (cache and ledger only).
    """

    @property
    def lanes(self) -> LaneState: ...

    @property
    def budgets(self) -> BudgetStore: ...

    @property
    def cache(self) -> CacheBackend: ...

    def attach(self, mux: LaneMux) -> LaneMux: ...

    def install(self) -> SharedState: ...


class RedisState:
    """Shared state in one Redis namespace: ``cache``, ``lanes``, ``budgets`` and ``ledger``.

    Keyword arguments override :class:`RedisSettings` fields (``namespace``, ``fail_open``,
    ``reservation_ttl``, ``cache_ttl``, ``cache_max_entries``, ...). ``local_cache_entries`` sizes
    the in-process LRU in front of the Redis cache (0: none), which also serves while Redis is lost.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        check: bool = True,
        local_cache_entries: int = 1024,
        **settings: Any,
    ) -> None:
        self.settings = RedisSettings.from_env(url, **settings)
        self.link = RedisLink(self.settings)
        if check:
            self.link.check()
        self.redis_cache = RedisCache(self.link)
        self.cache: CacheBackend = (
            LayeredCache(MemoryCache(local_cache_entries), self.redis_cache)
            if local_cache_entries > 0
            else self.redis_cache
        )
        self.lanes = RedisLaneState(self.link)
        self.budgets = RedisBudgetStore(self.link)
        self.ledger = UsageLedger(self.link)
        self._previous_cache: CacheBackend | None = None
        self._installed = False

    @classmethod
    def from_env(cls, **settings: Any) -> RedisState:
        """State from ``DSRS_REDIS_URL`` (a clear error when it is unset or Redis does not answer)."""
        return cls(None, **settings)

    def attach(self, mux: LaneMux) -> LaneMux:
        """Give ``mux`` the shared lane health and budgets, and :meth:`install` the cache and ledger."""
        mux.state = self.lanes
        mux.budgets = self.budgets
        self.install()
        return mux

    @property
    def fail_open(self) -> bool:
        return self.settings.fail_open

    def install(self) -> RedisState:
        """Make this process use the shared cache and count its calls in the ledger."""
        if not self._installed:
            # Not get_cache(): that would build (and create the file of) the default cache.
            self._previous_cache = _runtime.runtime().cache
            set_cache(self.cache)
            self.ledger.install()
            self._installed = True
        return self

    def uninstall(self) -> None:
        """Undo :meth:`install` (the previous cache comes back; counts are pushed)."""
        if self._installed:
            set_cache(self._previous_cache)
            self.ledger.uninstall()
            self._installed = False
        self.ledger.flush()

    async def aclose(self) -> None:
        """Finish pending cache writes, push the ledger and close this loop's connections."""
        await self.redis_cache.drain()
        await self.budgets.aclose()
        self.uninstall()
        self.ledger.close()
        await self.link.aclose()

    def close(self) -> None:
        self.uninstall()
        self.ledger.close()
        self.link.close()

    def __repr__(self) -> str:
        s = self.settings
        return f"RedisState({s.safe_url!r}, namespace={s.namespace!r}, fail_open={s.fail_open})"


if TYPE_CHECKING:

    def _conforms(state: RedisState) -> SharedState:  # mypy checks that RedisState is a SharedState
        return state
