"""Response cache (opt-in per LM with ``with_cache(True)``).

A cache maps the SHA-256 key of the final request (:meth:`dsrs.LMRequest.cache_key`) to the
finished :class:`dsrs.LMResponse`. Errors are never stored. Backends implement
:class:`CacheBackend`; :func:`get_cache` returns the process default.
"""

from __future__ import annotations

import abc
import threading
from collections import OrderedDict

from dsrs.types import LMResponse

__all__ = ["CacheBackend", "MemoryCache", "get_cache", "set_cache"]


class CacheBackend(abc.ABC):
    """Where cached responses live."""

    @abc.abstractmethod
    async def aget(self, key: str) -> LMResponse | None:
        """The cached response for ``key``, or ``None`` (a broken backend answers ``None``)."""

    @abc.abstractmethod
    async def aset(self, key: str, response: LMResponse) -> None:
        """Store ``response`` (a failure to store is a warning, never an error of the call)."""

    async def aclear(self) -> None:
        """Remove every entry."""


class MemoryCache(CacheBackend):
    """An in-process LRU."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, LMResponse] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> LMResponse | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def set(self, key: str, response: LMResponse) -> None:
        with self._lock:
            self._data[key] = response
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    async def aget(self, key: str) -> LMResponse | None:
        return self.get(key)

    async def aset(self, key: str, response: LMResponse) -> None:
        self.set(key, response)

    async def aclear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


_cache: CacheBackend | None = None


def get_cache() -> CacheBackend:
    """The process's default cache backend."""
    global _cache
    if _cache is None:
        _cache = MemoryCache()
    return _cache


def set_cache(cache: CacheBackend | None) -> None:
    """Replace the default cache backend (``None`` resets to the built-in default)."""
    global _cache
    _cache = cache
