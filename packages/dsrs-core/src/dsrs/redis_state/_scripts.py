"""Lua scripts run atomically inside Redis, and the helper that runs them by SHA.

Times come from the server's clock (``TIME``), so workers with skewed clocks agree on when a
reservation or a cooldown ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import redis
import redis.asyncio as aredis

__all__ = [
    "BUDGET_EXTEND",
    "BUDGET_READ",
    "BUDGET_RESERVE",
    "BUDGET_SETTLE",
    "CACHE_GET",
    "CACHE_SET",
    "LANE_SET",
    "Script",
]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Budget scopes are given as KEYS pairs: (budget hash, reservation zset) per scope.
# The hash holds limit, spent, reserved and one field "r:<id>" per live reservation (its amount);
# the zset scores each reservation id with the server time (ms) at which it expires.
_PURGE = """
local function purge(b, z)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #expired == 0 then return end
  for _, rid in ipairs(expired) do
    local amt = redis.call('HGET', b, 'r:' .. rid)
    if amt then
      redis.call('HDEL', b, 'r:' .. rid)
      redis.call('HINCRBY', b, 'reserved', -tonumber(amt))
      redis.call('HINCRBY', b, 'expired', 1)
    end
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
end
"""

#: ARGV: id, amount, ttl_ms, then one limit per scope ('' = no limit, only tracked).
#: Returns {1, 0, 0} when reserved in every scope, else {0, i, remaining} for the first scope i
#: that cannot cover ``amount`` (nothing is reserved anywhere then). Expired holds are purged
#: when they would make the difference (so the common path stays a handful of commands).
BUDGET_RESERVE = (
    _NOW
    + _PURGE
    + """
local id, amount, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = #KEYS / 2
for i = 1, n do
  local b, z = KEYS[2 * i - 1], KEYS[2 * i]
  local limit = ARGV[3 + i]
  if limit ~= nil and limit ~= '' then
    local v = redis.call('HMGET', b, 'spent', 'reserved', 'limit')
    if v[3] ~= limit then redis.call('HSET', b, 'limit', limit) end
    local spent, reserved = tonumber(v[1] or '0'), tonumber(v[2] or '0')
    limit = tonumber(limit)
    if spent + reserved + amount > limit then
      purge(b, z)
      reserved = tonumber(redis.call('HGET', b, 'reserved') or '0')
      if spent + reserved + amount > limit then
        redis.call('HINCRBY', b, 'refused', 1)
        return {0, i, limit - spent - reserved}
      end
    end
  end
end
for i = 1, n do
  local b, z = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HSET', b, 'r:' .. id, amount)
  redis.call('HINCRBY', b, 'reserved', amount)
  redis.call('ZADD', z, now + ttl, id)
end
return {1, 0, 0}
"""
)

#: ARGV: id, spent msats ('' = release: nothing spent). Returns, per scope, 1 if the reservation
#: was still held there, 0 if it had already expired (the spend is counted either way).
BUDGET_SETTLE = """
local id, spent = ARGV[1], ARGV[2]
local out = {}
for i = 1, #KEYS / 2 do
  local b, z = KEYS[2 * i - 1], KEYS[2 * i]
  local amt = redis.call('HGET', b, 'r:' .. id)
  if amt then
    redis.call('HDEL', b, 'r:' .. id)
    redis.call('HINCRBY', b, 'reserved', -tonumber(amt))
    redis.call('ZREM', z, id)
  end
  if spent ~= '' then
    redis.call('HINCRBY', b, 'spent', tonumber(spent))
  end
  out[i] = amt and 1 or 0
end
return out
"""

#: ARGV: id, ttl_ms. Pushes a live reservation's expiry to now + ttl; returns how many scopes held it.
BUDGET_EXTEND = (
    _NOW
    + """
local n = 0
for i = 1, #KEYS / 2 do
  n = n + redis.call('ZADD', KEYS[2 * i], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
end
return n
"""
)

#: KEYS: one scope's (budget hash, reservation zset). Purges expired holds, returns the hash.
BUDGET_READ = (
    _NOW
    + _PURGE
    + """
purge(KEYS[1], KEYS[2])
return redis.call('HGETALL', KEYS[1])
"""
)

#: KEYS: a lane's status key. ARGV: status, reason, ms ('' = no end). Sets the status unless the
#: one in force is stricter (disabled > exhausted > cooling) or the same and lasts longer.
LANE_SET = """
local rank = {cooling = 1, exhausted = 2, disabled = 3}
local new = rank[ARGV[1]] or 0
local cur = redis.call('GET', KEYS[1])
if cur then
  local old = rank[string.match(cur, '^[^\t]*')] or 0
  local pttl = redis.call('PTTL', KEYS[1])
  if old > new then return 0 end
  if old == new then
    if pttl == -1 then return 0 end
    if ARGV[3] ~= '' and pttl > tonumber(ARGV[3]) then return 0 end
  end
end
local value = ARGV[1] .. '\t' .. ARGV[2]
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], value)
else
  redis.call('SET', KEYS[1], value, 'PX', tonumber(ARGV[3]))
end
return 1
"""

#: KEYS: entry key, LRU zset. ARGV: member. Returns the entry (or nil) and refreshes its LRU rank.
CACHE_GET = (
    _NOW
    + """
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return v
"""
)

#: KEYS: entry key, LRU zset. ARGV: member, value, ttl_ms ('' = none), max entries, key prefix.
#: Stores the entry and evicts the least recently used beyond the bound (and any already expired).
CACHE_SET = (
    _NOW
    + """
local ttl = ARGV[3]
if ttl ~= '' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ttl))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ttl))
else
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
local evicted = 0
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do
    redis.call('DEL', ARGV[5] .. old[i])
    evicted = evicted + 1
  end
end
return evicted
"""
)


class Script:
    """A Lua script run by SHA (``EVALSHA``), loaded again if the server lost it (restart)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()

    async def run(self, client: aredis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await cast("Awaitable[Any]", client.evalsha(self.sha, len(keys), *keys, *args))
        except redis.exceptions.NoScriptError:
            return await cast("Awaitable[Any]", client.eval(self.source, len(keys), *keys, *args))

    def run_sync(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)
