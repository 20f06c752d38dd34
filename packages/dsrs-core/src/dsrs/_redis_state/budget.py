"""Budgets in msats shared through Redis: reserve before a call, settle after, atomically.

A reservation holds ``amount`` msats in every scope it names (the global budget and the lane's)
or in none: one Lua script checks ``spent + reserved + amount <= limit`` in each scope and records
the hold, so any number of processes together never overspend. A hold carries an expiry (server
time); a worker that crashes mid-call stops renewing it and its hold is released after
``reservation_ttl``. A live call renews its hold every third of the TTL.

Settling does not keep the caller waiting: the hold stays in force until the settle script has run
(so nothing can be overspent meanwhile), which happens in a background task right away; reading
totals (:meth:`RedisBudgetStore.status`, ``snapshot``) and ``aclose`` wait for pending settles. A
cancelled caller cannot interrupt a settle halfway either.

When Redis is lost, spends are refused (:class:`BudgetUnavailableError`, fail-closed) unless the
state was configured ``fail_open``: then holds are kept in this process against the same limits,
and what was spent meanwhile is added to the shared totals once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dsrs._budget import BudgetStatus, BudgetStore, Reservation
from dsrs._redis_state._link import REDIS_ERRORS, RedisLink
from dsrs._redis_state._scripts import BUDGET_EXTEND, BUDGET_READ, BUDGET_RESERVE, BUDGET_SETTLE, Script
from dsrs.errors import BudgetExceededError

__all__ = [
    "BudgetUnavailableError",
    "RedisBudgetStore",
    "RedisReservation",
]

log = logging.getLogger("dsrs._redis_state")

_RESERVE = Script(BUDGET_RESERVE)
_SETTLE = Script(BUDGET_SETTLE)
_EXTEND = Script(BUDGET_EXTEND)
_READ = Script(BUDGET_READ)


class BudgetUnavailableError(BudgetExceededError):
    """The shared budget could not be consulted (Redis lost) and spends fail closed."""


@dataclass(eq=False)
class RedisReservation(Reservation):
    """A hold in Redis (or, fail-open while Redis is lost, in this process)."""

    limits: tuple[tuple[str, int | None], ...] = ()
    local: bool = False


class _LocalBudgets:
    """Fail-open fallback: holds against the same limits, in this process only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spent: dict[str, int] = {}
        self.reserved: dict[str, int] = {}
        #: Spends made while Redis was lost, added to the shared totals when it is back.
        self.unsynced: dict[str, int] = {}

    def reserve(self, r: RedisReservation) -> tuple[str, int | None, int] | None:
        with self._lock:
            for scope, limit in r.limits:
                used = self.spent.get(scope, 0) + self.reserved.get(scope, 0)
                if limit is not None and used + r.amount_msats > limit:
                    return scope, limit, limit - used
            for scope, _ in r.limits:
                self.reserved[scope] = self.reserved.get(scope, 0) + r.amount_msats
            return None

    def settle(self, r: RedisReservation, spent: int) -> None:
        with self._lock:
            for scope in r.scopes:
                if r.local:
                    self.reserved[scope] = self.reserved.get(scope, 0) - r.amount_msats
                self.spent[scope] = self.spent.get(scope, 0) + spent
                if spent:
                    self.unsynced[scope] = self.unsynced.get(scope, 0) + spent

    def take_unsynced(self) -> dict[str, int]:
        with self._lock:
            out, self.unsynced = self.unsynced, {}
            return out

    def give_back(self, unsynced: Mapping[str, int]) -> None:
        with self._lock:
            for scope, n in unsynced.items():
                self.unsynced[scope] = self.unsynced.get(scope, 0) + n


class RedisBudgetStore(BudgetStore):
    """A :class:`~dsrs._budget.BudgetStore` shared by every process using the same namespace.

    Scopes are names such as ``"global"`` and ``"lane:premium"``; the caller (a LaneMux) passes the
    limits with each reservation, and the last limit seen is kept for ``dsrs usage``.
    """

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._local = _LocalBudgets()
        # Live holds per event loop, renewed together by one task per loop (every TTL/3).
        self._live: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, RedisReservation]] = (
            weakref.WeakKeyDictionary()
        )
        self._renewers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )
        self._settling: set[asyncio.Task[None]] = set()

    def _scope_key(self, scope: str) -> str:
        # One hash tag for every budget key: a script's keys share a slot on a cluster.
        return f"{{{self.link.settings.namespace}}}:budget:{scope}"

    def _keys(self, scopes: Iterable[str]) -> list[str]:
        """A budget script's KEYS: the holds hash, the holds expiry zset, then each scope's hash."""
        ns = self.link.settings.namespace
        return [f"{{{ns}}}:budget-holds", f"{{{ns}}}:budget-holds-exp", *(self._scope_key(s) for s in scopes)]

    # --- the call path -----------------------------------------------------------------------

    async def reserve(self, limits: Mapping[str, int | None], amount_msats: int) -> RedisReservation:
        """Hold ``amount_msats`` on every scope of ``limits`` (scope -> limit, None = unlimited), or none.

        Raises :class:`~dsrs.BudgetExceededError` when a scope cannot cover it, and
        :class:`BudgetUnavailableError` when Redis is lost and spends fail closed.
        """
        if amount_msats < 0:
            raise ValueError(f"cannot reserve a negative amount ({amount_msats})")
        if any("\t" in scope or not scope for scope in limits):
            raise ValueError(f"budget scopes must be non-empty names without tabs, got {sorted(limits)}")
        pairs = tuple((str(scope), None if limit is None else int(limit)) for scope, limit in limits.items())
        r = RedisReservation(
            id=uuid.uuid4().int >> 65,
            scopes=tuple(scope for scope, _ in pairs),
            amount_msats=int(amount_msats),
            limits=pairs,
        )
        if not pairs:
            return r
        if self.link.should_try():
            ttl_ms = max(1, int(self.link.settings.reservation_ttl * 1000))
            try:
                client = self.link.client()
                await self._push_unsynced(client)
                result = await _RESERVE.run(
                    client,
                    self._keys(r.scopes),
                    [r.id, r.amount_msats, ttl_ms, *("" if limit is None else limit for _, limit in pairs)],
                )
            except REDIS_ERRORS as exc:
                self.link.mark_down("budget reserve", exc)
            else:
                self.link.mark_up()
                ok, index, remaining = (int(x) for x in result)
                if not ok:
                    scope, limit = pairs[index - 1]
                    raise _exceeded(scope, limit, r.amount_msats, remaining)
                self._track(r)
                return r
        return self._reserve_locally(r)

    def _reserve_locally(self, r: RedisReservation) -> RedisReservation:
        settings = self.link.settings
        if not settings.fail_open:
            raise BudgetUnavailableError(
                f"budget spend refused: Redis at {settings.safe_url} is unreachable and budgets fail closed "
                "(pass RedisState(..., fail_open=True) or set DSRS_REDIS_FAIL_OPEN=1 to allow local spends)",
                code="budget_unavailable",
            )
        r.local = True
        refused = self._local.reserve(r)
        if refused is not None:
            scope, limit, remaining = refused
            raise _exceeded(scope, limit, r.amount_msats, remaining, shared=False)
        return r

    async def settle(self, reservation: Reservation, actual_msats: int) -> None:
        """Release the hold and count ``actual_msats`` as spent (once; later calls do nothing)."""
        if reservation.settled:
            return
        reservation.settled = True
        spent = max(0, int(actual_msats))
        if not isinstance(reservation, RedisReservation):
            raise TypeError("this reservation was not made by a RedisBudgetStore")
        for live in self._live.values():
            live.pop(reservation.id, None)
        if not reservation.scopes:
            return
        if reservation.local:
            self._local.settle(reservation, spent)
            return
        if self.link.should_try():
            task = asyncio.get_running_loop().create_task(self._settle_in_redis(reservation, spent))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
            return
        # Redis lost between reserve and settle: the hold expires by itself; keep the spend for later.
        self._local.settle(reservation, spent)

    async def _settle_in_redis(self, reservation: RedisReservation, spent: int) -> None:
        keys, args = self._keys(reservation.scopes), [reservation.id, spent]
        try:
            await _SETTLE.run(self.link.client(), keys, args)
        except asyncio.CancelledError:
            # The loop is going away (``asyncio.run`` returning right after the call cancels what is
            # left): the spend must still be counted, so settle with the blocking client. Should the
            # cancelled command have reached Redis already, the spend counts twice — over-counting
            # is the safe side of a budget.
            try:
                _SETTLE.run_sync(self.link.sync_client(), keys, args)
            except REDIS_ERRORS:
                self._local.settle(reservation, spent)
            raise
        except REDIS_ERRORS as exc:
            self.link.mark_down("budget settle", exc)
            self._local.settle(reservation, spent)
        else:
            self.link.mark_up()

    async def drain(self) -> None:
        """Wait until this loop's pending settles have reached Redis (or been kept for later)."""
        loop = asyncio.get_running_loop()
        pending = [t for t in self._settling if t.get_loop() is loop]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _track(self, r: RedisReservation) -> None:
        loop = asyncio.get_running_loop()
        live = self._live.get(loop)
        if live is None:
            live = self._live[loop] = {}
        live[r.id] = r
        renewer = self._renewers.get(loop)
        if renewer is None or renewer.done():
            self._renewers[loop] = loop.create_task(self._renew_live(live), name="dsrs-redis-budget-renewal")

    async def _renew_live(self, live: dict[int, RedisReservation]) -> None:
        """Push the expiry of this loop's live holds every TTL/3, in one command; stop when none are left."""
        ttl = self.link.settings.reservation_ttl
        while live:
            await asyncio.sleep(ttl / 3)
            ids = [rid for rid, r in live.items() if not r.settled]
            if not ids or not self.link.should_try():
                continue
            try:
                await _EXTEND.run(self.link.client(), self._keys(()), [max(1, int(ttl * 1000)), *ids])
            except REDIS_ERRORS as exc:
                self.link.mark_down("budget renewal", exc)
            else:
                self.link.mark_up()

    async def aclose(self) -> None:
        """Stop renewing this loop's holds (unsettled ones then expire after the TTL)."""
        await self.drain()
        loop = asyncio.get_running_loop()
        self._live.pop(loop, None)
        renewer = self._renewers.pop(loop, None)
        if renewer is not None and not renewer.done():
            renewer.cancel()
            try:
                await renewer
            except asyncio.CancelledError:
                pass

    async def _push_unsynced(self, client: Any) -> None:
        pending = self._local.take_unsynced()
        if not pending:
            return
        try:
            pipe = client.pipeline(transaction=False)
            for scope, n in pending.items():
                pipe.hincrby(self._scope_key(scope), "spent", n)
            await pipe.execute()
        except BaseException:
            self._local.give_back(pending)
            raise
        log.warning("added %s msats spent while Redis was lost to the shared budgets", sum(pending.values()))

    # --- inspection ----------------------------------------------------------------------------

    async def status(self, scope: str, limit: int | None = None) -> BudgetStatus:
        """Spent and reserved msats of ``scope`` in Redis (expired holds purged first)."""
        snap = await self.snapshot([scope])
        s = snap[0]
        return BudgetStatus(scope, limit if limit is not None else s.limit, s.spent, s.reserved)

    async def snapshot(self, scopes: Sequence[str] | None = None) -> list[BudgetSnapshot]:
        """Totals of ``scopes`` (default: every scope in this namespace), expired holds purged."""
        await self.drain()
        client = self.link.client()
        if scopes is None:
            scopes = await self._all_scopes(client)
        out = []
        for scope in scopes:
            flat, holds = await _READ.run(client, self._keys([scope]), [])
            out.append(_snapshot(scope, dict(zip(flat[::2], flat[1::2], strict=True)), int(holds)))
        return out

    async def _all_scopes(self, client: Any) -> list[str]:
        prefix = f"{{{self.link.settings.namespace}}}:budget:"
        found = set()
        async for key in client.scan_iter(match=prefix + "*", count=500):
            name = key.decode() if isinstance(key, bytes) else str(key)
            found.add(name[len(prefix) :])
        return sorted(found, key=lambda s: (not s.endswith("global"), s))

    async def reset(self, scope: str) -> None:
        """Forget what ``scope`` spent and holds (a new billing period; live holds release nothing)."""
        await self.drain()
        await self.link.client().delete(self._scope_key(scope))


@dataclass(frozen=True)
class BudgetSnapshot:
    """One scope's totals in msats, with hold statistics (for ``dsrs usage``)."""

    scope: str
    limit: int | None
    spent: int
    reserved: int
    holds: int = 0
    expired: int = 0
    refused: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else self.limit - self.spent - self.reserved

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "limit_msats": self.limit,
            "spent_msats": self.spent,
            "reserved_msats": self.reserved,
            "remaining_msats": self.remaining,
            "holds": self.holds,
            "expired_holds": self.expired,
            "refused": self.refused,
        }


def _snapshot(scope: str, data: Mapping[Any, Any], holds: int) -> BudgetSnapshot:
    d = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in data.items()}

    def num(name: str) -> int:
        return int(d.get(name, 0) or 0)

    return BudgetSnapshot(
        scope=scope,
        limit=int(d["limit"]) if "limit" in d else None,
        spent=num("spent"),
        reserved=num("reserved"),
        holds=holds,
        expired=num("expired"),
        refused=num("refused"),
    )


def _exceeded(
    scope: str, limit: int | None, amount: int, remaining: int, *, shared: bool = True
) -> BudgetExceededError:
    where = "shared via Redis" if shared else "local while Redis is lost"
    return BudgetExceededError(
        f"budget {scope!r} would be exceeded: the call may cost up to {amount} msats, "
        f"{max(remaining, 0)} of {limit} msats left ({where})",
        code="budget_exceeded",
    )
