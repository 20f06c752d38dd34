"""A response cache in Redis, shared by every process and machine using the same namespace.

Same key as the local cache (:meth:`dsrs.LMRequest.cache_key`, SHA-256 of the final request),
stored as ``{namespace}:cache:<key>`` with a TTL. The namespace holds at most
``cache_max_entries`` responses: a sorted set ranks entries by last use and storing a new one
evicts the least recently used beyond the bound, in the same atomic script.

Storing does not keep the caller waiting: the write to Redis runs as a background task (its
response is served to this process meanwhile; :meth:`RedisCache.drain` waits for the writes, and
``RedisState.aclose`` calls it). A lost write is only a missing entry.

A task that asks for the same key again right after Redis answered "miss" (a LaneMux checks the
cache before reserving budget, then the LM checks it again) gets the miss without a second round
trip; a miss is always a safe answer.

An optional ``local`` backend (e.g. the in-process LRU) sits in front: hits there skip Redis, every
response is stored there too, and it is what serves while Redis is lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import Any

from dsrs import _json
from dsrs._cache import CacheBackend
from dsrs._redis_state._link import REDIS_ERRORS, RedisLink
from dsrs._redis_state._scripts import CACHE_GET, CACHE_SET, Script
from dsrs.types import LMResponse

__all__ = ["RedisCache"]

log = logging.getLogger("dsrs._redis_state")
_GET = Script(CACHE_GET)
_SET = Script(CACHE_SET)
#: How long a task may reuse Redis's "miss" for the same key without asking again.
_MISS_REUSE_S = 0.05
_last_miss: contextvars.ContextVar[tuple[str, float] | None] = contextvars.ContextVar("dsrs_redis_miss", default=None)


class RedisCache(CacheBackend):
    """Cached responses in Redis (TTL, size-bounded), with an optional local front layer."""

    def __init__(self, link: RedisLink, *, local: CacheBackend | None = None) -> None:
        self.link = link
        self.local = local
        self.prefix = link.key("cache") + ":"
        self.lru_key = link.key("cache-lru")
        self.hits = 0
        self.misses = 0
        self._writing: dict[str, LMResponse] = {}
        self._writes: set[asyncio.Task[None]] = set()

    async def aget(self, key: str) -> LMResponse | None:
        if self.local is not None:
            hit = await self.local.aget(key)
            if hit is not None:
                self.hits += 1
                return hit
        writing = self._writing.get(key)
        if writing is not None:
            self.hits += 1
            return writing
        last = _last_miss.get()
        if last is not None and last[0] == key and time.monotonic() - last[1] < _MISS_REUSE_S:
            self.misses += 1
            return None
        if not self.link.should_try():
            self.misses += 1
            return None
        try:
            raw = await _GET.run(self.link.client(), [self.prefix + key, self.lru_key], [key])
        except REDIS_ERRORS as exc:
            self.link.mark_down("cache get", exc)
            self.misses += 1
            return None
        self.link.mark_up()
        if raw is None:
            self.misses += 1
            _last_miss.set((key, time.monotonic()))
            return None
        try:
            response = LMResponse.from_dict(_json.loads(raw))
        except Exception as exc:  # any undecodable entry is a miss
            log.warning("dropping unreadable Redis cache entry %s…: %s", key[:12], exc)
            try:
                await self.link.client().delete(self.prefix + key)
            except REDIS_ERRORS:
                pass
            self.misses += 1
            return None
        self.hits += 1
        if self.local is not None:
            await self.local.aset(key, response)
        return response

    async def aset(self, key: str, response: LMResponse) -> None:
        last = _last_miss.get()
        if last is not None and last[0] == key:
            _last_miss.set(None)
        if self.local is not None:
            await self.local.aset(key, response)
        if not self.link.should_try():
            return
        try:
            blob = _json.dumps(response.to_dict())
        except (TypeError, ValueError) as exc:
            log.warning("response not cached in Redis (not JSON-serialisable): %s", exc)
            return
        settings = self.link.settings
        if len(blob) > settings.cache_max_value_bytes:
            log.info("response of %d bytes not cached in Redis (limit %d)", len(blob), settings.cache_max_value_bytes)
            return
        ttl = "" if settings.cache_ttl is None else max(1, int(settings.cache_ttl * 1000))
        args = [key, blob, ttl, settings.cache_max_entries, self.prefix]
        self._writing[key] = response
        task = asyncio.get_running_loop().create_task(self._write(key, response, args))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, key: str, response: LMResponse, args: list[Any]) -> None:
        try:
            await _SET.run(self.link.client(), [self.prefix + key, self.lru_key], args)
        except REDIS_ERRORS as exc:
            self.link.mark_down("cache set", exc)
        else:
            self.link.mark_up()
        finally:
            if self._writing.get(key) is response:
                del self._writing[key]

    async def drain(self) -> None:
        """Wait until this loop's pending writes have reached Redis (or failed)."""
        loop = asyncio.get_running_loop()
        pending = [t for t in self._writes if t.get_loop() is loop]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def aclear(self) -> None:
        await self.drain()
        if self.local is not None:
            await self.local.aclear()
        client = self.link.client()
        batch: list[Any] = []
        async for key in client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await client.delete(*batch)
                batch.clear()
        if batch:
            await client.delete(*batch)
        await client.delete(self.lru_key)

    async def astats(self) -> dict[str, Any]:
        """Entries in this namespace and this process's hit/miss counts."""
        await self.drain()
        entries = await self.link.client().zcard(self.lru_key)
        return {
            "backend": "redis",
            "url": self.link.settings.safe_url,
            "namespace": self.link.settings.namespace,
            "entries": int(entries),
            "max_entries": self.link.settings.cache_max_entries,
            "ttl_s": self.link.settings.cache_ttl,
            "hits": self.hits,
            "misses": self.misses,
        }
