"""Shared state for fleets of workers, in Redis (the ``dsrs-core[redis]`` extra).

:class:`RedisState` bundles what several processes or machines must share:

* ``cache`` — the response cache (same keys as the local cache, TTL, size-bounded);
* ``lanes`` — lane health: one worker's rate limit cools the lane for all, for ``retry_after``;
* ``budgets`` — msats budgets, global and per lane, reserved atomically by a Lua script, with holds
  that expire so a crashed worker's reservation is released;
* ``ledger`` — tokens, cost and calls per day, provider, lane and model (``dsrs usage``).

Configured by ``DSRS_REDIS_URL`` (``RedisState.from_env()``) or in code (``RedisState(url)``);
``namespace`` (``DSRS_REDIS_NAMESPACE``, default ``dsrs``) prefixes every key. When Redis is lost
mid-run, calls go on with local state and one :class:`RedisStateWarning`; budget spends are refused
unless ``fail_open=True`` (``DSRS_REDIS_FAIL_OPEN=1``); shared state resumes when Redis is back.

Importing this module needs the ``redis`` package; ``import dsrs`` never imports it.
"""

from __future__ import annotations

from dsrs._redis_state._link import (
    ENV_FAIL_OPEN,
    ENV_NAMESPACE,
    ENV_URL,
    RedisLink,
    RedisSettings,
    RedisStateWarning,
    RedisUnavailableError,
    redact_url,
)
from dsrs._redis_state.budget import BudgetSnapshot, BudgetUnavailableError, RedisBudgetStore, RedisReservation
from dsrs._redis_state.cache import RedisCache
from dsrs._redis_state.lanes import RedisLaneState, current_lane
from dsrs._redis_state.ledger import METRICS, UsageLedger, UsageRow
from dsrs._redis_state.state import RedisState, SharedState

__all__ = [
    "ENV_FAIL_OPEN",
    "ENV_NAMESPACE",
    "ENV_URL",
    "METRICS",
    "BudgetSnapshot",
    "BudgetUnavailableError",
    "RedisBudgetStore",
    "RedisCache",
    "RedisLaneState",
    "RedisLink",
    "RedisReservation",
    "RedisSettings",
    "RedisState",
    "RedisStateWarning",
    "RedisUnavailableError",
    "SharedState",
    "UsageLedger",
    "UsageRow",
    "current_lane",
    "redact_url",
]
