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
    "LEDGER_ADD",
    "Script",
]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Budgets. KEYS are always: the holds hash, the holds expiry zset, then one hash per scope.
# A scope hash holds limit, spent, reserved (and refused/expired counters). A hold is one field of
# the holds hash, id -> "amount<TAB>scope key<TAB>scope key...", and one member of the zset scored
# with the server time (ms) at which it expires. ``reserved`` never goes below 0 (a scope reset
# while holds were out).
_BUDGET_COMMON = """
local holds, exp = KEYS[1], KEYS[2]
local function unreserve(key, amt)
  if redis.call('HINCRBY', key, 'reserved', -amt) < 0 then redis.call('HSET', key, 'reserved', 0) end
end
local function purge()
  local expired = redis.call('ZRANGEBYSCORE', exp, '-inf', now)
  if #expired == 0 then return false end
  for _, rid in ipairs(expired) do
    local rec = redis.call('HGET', holds, rid)
    if rec then
      local amt = nil
      for part in string.gmatch(rec, '[^\\t]+') do
        if amt == nil then
          amt = tonumber(part)
        else
          unreserve(part, amt)
          redis.call('HINCRBY', part, 'expired', 1)
        end
      end
      redis.call('HDEL', holds, rid)
    end
  end
  redis.call('ZREMRANGEBYSCORE', exp, '-inf', now)
  return true
end
"""

#: ARGV: id, amount, ttl_ms, then one limit per scope ('' = no limit, only tracked).
#: Returns {1, 0, 0} when reserved in every scope, else {0, i, remaining} for the first scope i
#: that cannot cover ``amount`` (nothing is reserved anywhere then). Expired holds are purged
#: when they would make the difference (so the common path stays a handful of commands).
BUDGET_RESERVE = (
    _NOW
    + _BUDGET_COMMON
    + """
local amount, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local purged = false
for i = 3, #KEYS do
  local limit = ARGV[i + 1]
  if limit ~= '' then
    local v = redis.call('HMGET', KEYS[i], 'spent', 'reserved', 'limit')
    if v[3] ~= limit then redis.call('HSET', KEYS[i], 'limit', limit) end
    local spent, reserved = tonumber(v[1] or '0'), tonumber(v[2] or '0')
    limit = tonumber(limit)
    if spent + reserved + amount > limit and not purged then
      purged = true
      if purge() then reserved = tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0') end
    end
    if spent + reserved + amount > limit then
      redis.call('HINCRBY', KEYS[i], 'refused', 1)
      return {0, i - 2, limit - spent - reserved}
    end
  end
end
local rec = ARGV[2]
for i = 3, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[2])
  rec = rec .. '\\t' .. KEYS[i]
end
redis.call('HSET', holds, ARGV[1], rec)
redis.call('ZADD', exp, now + ttl, ARGV[1])
return {1, 0, 0}
"""
)

#: ARGV: id, spent msats ('' = release: nothing spent). Returns 1 if the hold was still there,
#: 0 if it had expired (the spend is counted either way).
BUDGET_SETTLE = """
local holds, exp = KEYS[1], KEYS[2]
local rec = redis.call('HGET', holds, ARGV[1])
local amt = 0
if rec then
  amt = tonumber(string.match(rec, '^[^\\t]+'))
  redis.call('HDEL', holds, ARGV[1])
  redis.call('ZREM', exp, ARGV[1])
end
for i = 3, #KEYS do
  if rec and redis.call('HINCRBY', KEYS[i], 'reserved', -amt) < 0 then
    redis.call('HSET', KEYS[i], 'reserved', 0)
  end
  if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[i], 'spent', ARGV[2]) end
end
return rec and 1 or 0
"""

#: ARGV: ttl_ms, then hold ids. Pushes each live hold's expiry to now + ttl (expired or settled
#: ones are not revived); returns how many were still there.
BUDGET_EXTEND = (
    _NOW
    + """
local expiry = now + tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('ZADD', KEYS[2], 'XX', 'CH', expiry, ARGV[i])
end
return n
"""
)

#: KEYS: holds hash, holds zset, one scope hash. Purges expired holds; returns the scope hash
#: (flat) and how many live holds draw on the scope.
BUDGET_READ = (
    _NOW
    + _BUDGET_COMMON
    + """
purge()
local n = 0
local needle = '\\t' .. KEYS[3] .. '\\t'
for _, rec in ipairs(redis.call('HVALS', holds)) do
  if string.find(rec .. '\\t', needle, 1, true) then n = n + 1 end
end
return {redis.call('HGETALL', KEYS[3]), n}
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


# Usage ledger: one batch of counters applied atomically and at most once. KEYS[1] is the set of
# days, KEYS[2] the batch's idempotency key (a batch re-sent after a lost reply is skipped), then
# one hash per day. ARGV: ttl, then per day: the day, the number of fields m, and m field/amount
# pairs. Every amount is checked first (an integer, >= 0, and the sum within 2^53) so a bad value
# changes nothing instead of failing half-way.
LEDGER_ADD = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', 86400) == false then return 'dup' end
local limit = 9007199254740991
local ttl = ARGV[1]
local pos, plan = 2, {}
for k = 3, #KEYS do
  local day, m = ARGV[pos], tonumber(ARGV[pos + 1])
  pos = pos + 2
  for i = 1, m do
    local field, n = ARGV[pos], tonumber(ARGV[pos + 1])
    pos = pos + 2
    local cur = tonumber(redis.call('HGET', KEYS[k], field) or '0') or 0
    if n == nil or n < 0 or n ~= math.floor(n) or cur + n > limit then
      redis.call('DEL', KEYS[2])
      return {'refused', field}
    end
    plan[#plan + 1] = {KEYS[k], field, ARGV[pos - 1]}
  end
  plan[#plan + 1] = {KEYS[k], false, day}
end
for _, op in ipairs(plan) do
  if op[2] then
    redis.call('HINCRBY', op[1], op[2], op[3])
  else
    redis.call('EXPIRE', op[1], ttl)
    redis.call('SADD', KEYS[1], op[3])
  end
end
return 'ok'
"""


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
