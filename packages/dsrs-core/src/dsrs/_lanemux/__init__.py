"""``dsrs.LaneMux``: several LMs behind one, with routing, retries, failover, cooldowns and budgets.

::

    mux = (
        dsrs.LaneMux(budget_msats=50_000)
        .add_lane("premium", dsrs.LM("gpt-4o"), tier="premium", budget_msats=40_000)
        .add_lane("fast", dsrs.LM("groq/llama-3.1-8b-instant"))
        .add_lane("local", dsrs.LM("ollama/llama3.2"))
    )
    mux = await dsrs.LaneMux.auto_detect(timeout=2)   # or: every installed and reachable provider
    dsrs.configure(mux)                                # usable wherever an LM is
    mux.call("Hi").lane                                # which lane answered

Routing: lanes are tried in the order they were added (``auto_detect`` adds them premium → balanced
→ local → swarm); a lane that is cooling down, exhausted or disabled is skipped. What happens on a
failure depends only on the error's class, through three separate mechanisms:

* **retry** (:class:`RetryPolicy`) — ``ProviderUnavailableError`` (5xx, connection), ``LMTimeoutError``
  and ``ResponseParseError`` are retried on the same lane with exponential backoff and jitter;
* **failover** (:class:`FailoverPolicy`) — then, or at once for ``RateLimitError``,
  ``QuotaExceededError``, ``AuthenticationError``/``PermissionDeniedError`` and budget refusals, the
  next lane is tried; ``InvalidRequestError`` (incl. ``ContextWindowExceededError``) and
  ``ContentFilterError`` are raised as they are, since another lane would refuse them too;
* **cooldown** (:class:`CooldownPolicy`) — a rate-limited lane rests for ``retry_after`` (or a
  default), a quota-exhausted lane rests for ``quota_cooldown`` (default: until :meth:`LaneMux.reset_lane`),
  a lane whose key is rejected is disabled, and a lane failing ``failure_threshold`` times in a row
  rests for ``failure_cooldown``.

When no lane can answer, :class:`~dsrs.errors.AllLanesFailedError` says what each lane answered.

Budgets (msats) per lane and for the whole mux: before a call, an upper bound of its cost (the
price, via the ``dsrs_cost`` hook, of an upper bound of the prompt tokens plus ``max_tokens``; or a
configured ``reserve_msats`` where the price is unknown) is reserved on the lane's and the global
budget atomically; after the call the reservation is settled to the actual cost. A call that does not
fit raises :class:`~dsrs.errors.BudgetExceededError` before anything is spent (or moves to a lane
that fits). Lane health and budgets live behind :class:`dsrs._lanestate.LaneState` and
:class:`dsrs._budget.BudgetStore`, so they can be shared (e.g. Redis) instead of in-process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Policies import eagerly (dsrs._lm uses RetryPolicy); the mux, which imports dsrs._lm, lazily.
from dsrs._lanemux.policies import CooldownPolicy, FailoverPolicy, RetryPolicy, decide

if TYPE_CHECKING:
    from dsrs._lanemux.detect import ProbeReport
    from dsrs._lanemux.mux import Lane, LaneMux, MuxStream, UnknownLaneError

__all__ = [
    "CooldownPolicy",
    "FailoverPolicy",
    "Lane",
    "LaneMux",
    "MuxStream",
    "ProbeReport",
    "RetryPolicy",
    "UnknownLaneError",
    "decide",
]

_LAZY = {"ProbeReport": "detect", "Lane": "mux", "LaneMux": "mux", "MuxStream": "mux", "UnknownLaneError": "mux"}


def __getattr__(name: str) -> Any:
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module 'dsrs._lanemux' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"dsrs._lanemux.{sub}"), name)
    globals()[name] = value
    return value
