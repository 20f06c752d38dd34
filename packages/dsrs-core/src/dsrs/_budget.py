"""Spending limits in msats, reserved before a call and settled after, atomically.

A :class:`BudgetStore` keeps, per named *scope* (``"global"``, ``"lane:premium"``, ...), a limit,
what was spent and what is currently reserved by calls in flight. A caller reserves an upper bound
of a call's cost on every scope it spends from at once (all or none), makes the call, then settles
the reservation to the actual cost (0 on failure). Because a reservation counts against the limit
until it is settled, concurrent calls can never together spend more than the limit, and a refused
call raises :class:`~dsrs.errors.BudgetExceededError` before anything is spent.

Implementations:

* :class:`InProcessBudgetStore` (default): a lock-protected dict; atomic across asyncio tasks and
  threads of one process.
* Another store (e.g. Redis, for budgets shared by processes or machines) subclasses
  :class:`BudgetStore` and makes :meth:`~BudgetStore.reserve` one atomic step (a Lua script or a
  transaction that checks every scope and increments their ``reserved`` together) and
  :meth:`~BudgetStore.settle` move the amount from ``reserved`` to ``spent``.
"""

from __future__ import annotations

import abc
import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from dsrs import _runtime
from dsrs.errors import BudgetExceededError

__all__ = ["BudgetStatus", "BudgetStore", "InProcessBudgetStore", "Reservation"]


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One scope: ``limit`` (``None`` = unlimited), ``spent`` and ``reserved`` msats."""

    scope: str
    limit: int | None
    spent: int
    reserved: int

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else self.limit - self.spent - self.reserved


@dataclass(slots=True)
class Reservation:
    """An amount held on some scopes until :meth:`BudgetStore.settle` is called."""

    id: int
    scopes: tuple[str, ...]
    amount_msats: int
    settled: bool = field(default=False)


class BudgetStore(abc.ABC):
    """Atomic reserve/settle accounting of msats per scope (see the module docstring).

    Limits are passed with each reservation (the caller, e.g. a LaneMux, owns its configuration);
    the store keeps what was spent and what is reserved.
    """

    @abc.abstractmethod
    async def reserve(self, limits: Mapping[str, int | None], amount_msats: int) -> Reservation:
        """Hold ``amount_msats`` on every scope of ``limits`` (scope -> limit, ``None`` = unlimited),
        or raise BudgetExceededError and hold nothing."""

    @abc.abstractmethod
    async def settle(self, reservation: Reservation, actual_msats: int) -> None:
        """Release the hold and record ``actual_msats`` as spent on its scopes (once; later calls no-op)."""

    @abc.abstractmethod
    async def status(self, scope: str, limit: int | None = None) -> BudgetStatus:
        """Spent and reserved msats of ``scope`` (with ``limit`` echoed for ``remaining``)."""

    async def reset(self, scope: str) -> None:
        """Forget what ``scope`` spent (a new billing period)."""
        raise NotImplementedError


class InProcessBudgetStore(BudgetStore):
    """The default store: exact and atomic within one process (asyncio tasks and threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._ids = itertools.count(1)
        _runtime.on_fork(self)

    def after_fork(self) -> None:
        """In a forked child: the parent's in-flight holds are the parent's, not counted here
        (they would never be settled in the child); what was spent before the fork stays."""
        self._lock = threading.Lock()
        self._reserved = {}

    # The sync methods hold the lock for a few dict operations and never await, so they are atomic
    # for asyncio tasks too; the async methods are the BudgetStore interface.

    def reserve_sync(self, limits: Mapping[str, int | None], amount_msats: int) -> Reservation:
        if amount_msats < 0:
            raise ValueError(f"cannot reserve a negative amount ({amount_msats})")
        with self._lock:
            for scope, limit in limits.items():
                if limit is None:
                    continue
                used = self._spent.get(scope, 0) + self._reserved.get(scope, 0)
                if used + amount_msats > limit:
                    raise BudgetExceededError(
                        f"budget {scope!r} would be exceeded: the call may cost up to {amount_msats} msats, "
                        f"{max(0, limit - used)} of {limit} msats left"
                    )
            for scope in limits:
                self._reserved[scope] = self._reserved.get(scope, 0) + amount_msats
            return Reservation(next(self._ids), tuple(limits), amount_msats)

    def settle_sync(self, reservation: Reservation, actual_msats: int) -> None:
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            for scope in reservation.scopes:
                self._reserved[scope] -= reservation.amount_msats
                self._spent[scope] = self._spent.get(scope, 0) + max(0, actual_msats)

    def status_sync(self, scope: str, limit: int | None = None) -> BudgetStatus:
        with self._lock:
            return BudgetStatus(scope, limit, self._spent.get(scope, 0), self._reserved.get(scope, 0))

    async def reserve(self, limits: Mapping[str, int | None], amount_msats: int) -> Reservation:
        return self.reserve_sync(limits, amount_msats)

    async def settle(self, reservation: Reservation, actual_msats: int) -> None:
        self.settle_sync(reservation, actual_msats)

    async def status(self, scope: str, limit: int | None = None) -> BudgetStatus:
        return self.status_sync(scope, limit)

    async def reset(self, scope: str) -> None:
        with self._lock:
            self._spent.pop(scope, None)
