"""Response cache (opt-in per LM with ``with_cache(True)``).

A cache maps the SHA-256 key of the final request (:meth:`dsrs.LMRequest.cache_key`: provider,
resolved model, base URL, messages and every wire parameter, never the API key) to the finished
:class:`dsrs.LMResponse`. Errors are never stored. Hits are returned by :class:`dsrs.LM` with
``usage.cache_hit=True`` and zero cost.

The default (:func:`get_cache`) is two layers: an in-process LRU (:class:`MemoryCache`) in front of
a SQLite file in the user cache directory (:class:`dsrs._cache.sqlite.SQLiteCache`; ``DSRS_CACHE_DIR``
overrides the directory, ``DSRS_CACHE=memory`` keeps everything in memory, ``DSRS_CACHE=off``
disables caching even for LMs that ask for it).

Writing another backend (Redis, a shared file server, ...) means subclassing :class:`CacheBackend`:

* ``aget(key)`` returns the stored :class:`LMResponse` or ``None``. A backend that cannot answer
  (connection lost, corrupt data) warns with :class:`CacheWarning` and returns ``None``: a broken
  cache is a miss, never a failed call.
* ``aset(key, response)`` stores it; failures warn and are swallowed the same way.
* ``aclear()`` removes every entry; ``astats()`` returns a small dict for ``dsrs cache stats``.

Responses serialize with :meth:`LMResponse.to_dict` / :meth:`LMResponse.from_dict` (plain JSON).
Install a backend with :func:`set_cache`, or stack it behind the memory layer with
:class:`LayeredCache`.
"""

from __future__ import annotations

import abc
import os
import threading
import warnings
from collections import OrderedDict
from typing import Any

from dsrs import _runtime
from dsrs.types import LMResponse

__all__ = [
    "CacheBackend",
    "CacheWarning",
    "LayeredCache",
    "MemoryCache",
    "NullCache",
    "default_cache",
    "get_cache",
    "set_cache",
]


class CacheWarning(RuntimeWarning):
    """A cache backend could not read or write; the call went on without the cache."""


class CacheBackend(abc.ABC):
    """Where cached responses live (see the module docstring for the contract)."""

    @abc.abstractmethod
    async def aget(self, key: str) -> LMResponse | None:
        """The cached response for ``key``, or ``None`` (a broken backend answers ``None``)."""

    @abc.abstractmethod
    async def aset(self, key: str, response: LMResponse) -> None:
        """Store ``response`` (a failure to store is a warning, never an error of the call)."""

    async def aclear(self) -> None:  # noqa: B027 - optional for backends
        """Remove every entry."""

    async def astats(self) -> dict[str, Any]:
        """A few numbers about this backend (entries, size, location) for ``dsrs cache stats``."""
        return {"backend": type(self).__name__}


class NullCache(CacheBackend):
    """Stores nothing (``DSRS_CACHE=off``)."""

    async def aget(self, key: str) -> LMResponse | None:
        return None

    async def aset(self, key: str, response: LMResponse) -> None:
        return None


class MemoryCache(CacheBackend):
    """An in-process LRU of at most ``max_entries`` responses (thread-safe)."""

    def __init__(self, max_entries: int = 4096) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.max_entries = max_entries
        self._data: OrderedDict[str, LMResponse] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        _runtime.on_fork(self)

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def get(self, key: str) -> LMResponse | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def set(self, key: str, response: LMResponse) -> None:
        with self._lock:
            self._data[key] = response
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    async def aget(self, key: str) -> LMResponse | None:
        return self.get(key)

    async def aset(self, key: str, response: LMResponse) -> None:
        self.set(key, response)

    async def aclear(self) -> None:
        self.clear()

    async def astats(self) -> dict[str, Any]:
        return {
            "backend": "memory",
            "entries": len(self._data),
            "max_entries": self.max_entries,
            "hits": self.hits,
            "misses": self.misses,
        }

    def __len__(self) -> int:
        return len(self._data)


class LayeredCache(CacheBackend):
    """A fast front layer (usually :class:`MemoryCache`) over a slower shared one (SQLite, Redis).

    Reads try the front first and copy back-layer hits into it; writes go to both.
    """

    def __init__(self, front: MemoryCache, back: CacheBackend) -> None:
        self.front = front
        self.back = back

    async def aget(self, key: str) -> LMResponse | None:
        hit = self.front.get(key)
        if hit is not None:
            return hit
        hit = await self.back.aget(key)
        if hit is not None:
            self.front.set(key, hit)
        return hit

    async def aset(self, key: str, response: LMResponse) -> None:
        self.front.set(key, response)
        await self.back.aset(key, response)

    async def aclear(self) -> None:
        self.front.clear()
        await self.back.aclear()

    async def astats(self) -> dict[str, Any]:
        return {"backend": "layered", "memory": await self.front.astats(), "disk": await self.back.astats()}


def default_cache() -> CacheBackend:
    """The cache :func:`get_cache` builds when none was set, following ``DSRS_CACHE``."""
    mode = os.environ.get("DSRS_CACHE", "").strip().lower()
    if mode in ("off", "0", "false", "none"):
        return NullCache()
    if mode == "memory":
        return MemoryCache()
    if mode not in ("", "sqlite", "disk", "on", "1", "true"):
        warnings.warn(
            f"DSRS_CACHE={mode!r} is not one of off, memory, sqlite; using sqlite", CacheWarning, stacklevel=2
        )
    from dsrs._cache.sqlite import SQLiteCache

    return LayeredCache(MemoryCache(), SQLiteCache())


def get_cache() -> CacheBackend:
    """The process's cache backend (memory LRU in front of SQLite unless :func:`set_cache` was used)."""
    cache: CacheBackend | None = _runtime.runtime().cache  # a cache hit pays this on every call
    return cache if cache is not None else _runtime.runtime().ensure("cache", default_cache)  # type: ignore[no-any-return]


def set_cache(cache: CacheBackend | None) -> None:
    """Replace the process's cache backend (``None``: rebuild the default on next use)."""
    _runtime.runtime().cache = cache
