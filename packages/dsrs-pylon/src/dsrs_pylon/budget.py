"""A msats budget shared by every copy of a Pylon LM, reserved atomically before paying.

``reserve(amount)`` either takes ``amount`` out of what remains (held until ``commit``/``release``)
or raises :class:`~dsrs.errors.BudgetExceededError`; nothing is ever paid without a reservation,
so concurrent jobs can never overspend. The lock is a ``threading.Lock`` because sync calls may run
jobs on different event loops and threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from dsrs.errors import BudgetExceededError

__all__ = ["Budget", "Reservation"]


class Budget:
    """At most ``limit_msats`` in total, across every job and thread that shares this object."""

    def __init__(self, limit_msats: int) -> None:
        if not isinstance(limit_msats, int) or limit_msats < 0:
            raise ValueError(f"budget must be a non-negative int of msats, got {limit_msats!r}")
        self.limit_msats = limit_msats
        self._spent = 0
        self._reserved = 0
        self._lock = threading.Lock()

    @property
    def spent_msats(self) -> int:
        return self._spent

    @property
    def reserved_msats(self) -> int:
        return self._reserved

    @property
    def remaining_msats(self) -> int:
        with self._lock:
            return self.limit_msats - self._spent - self._reserved

    def reserve(self, amount_msats: int, *, provider: str = "pylon", model: str | None = None) -> Reservation:
        if amount_msats < 0:
            raise ValueError("amount must be >= 0")
        with self._lock:
            remaining = self.limit_msats - self._spent - self._reserved
            if amount_msats > remaining:
                raise BudgetExceededError(
                    f"paying {amount_msats} msats would exceed the budget "
                    f"({remaining} of {self.limit_msats} msats left); nothing was paid",
                    provider=provider,
                    model=model,
                    code="budget_exceeded",
                )
            self._reserved += amount_msats
        return Reservation(self, amount_msats)

    def _settle(self, reserved: int, spent: int) -> None:
        with self._lock:
            self._reserved -= reserved
            self._spent += spent

    def to_dict(self) -> dict[str, int]:
        """Stable description for cache keys (the limit, not the running balance)."""
        return {"limit_msats": self.limit_msats}

    def __copy__(self) -> Budget:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Budget:
        return self  # one budget, shared by every copy of the LM that holds it

    def __repr__(self) -> str:
        return f"Budget(limit_msats={self.limit_msats}, spent_msats={self._spent}, reserved_msats={self._reserved})"


@dataclass
class Reservation:
    """Msats held for one payment; ``commit`` what was actually spent or ``release`` it all."""

    budget: Budget
    amount_msats: int
    settled: bool = False

    def commit(self, spent_msats: int | None = None) -> None:
        if not self.settled:
            self.settled = True
            self.budget._settle(self.amount_msats, self.amount_msats if spent_msats is None else spent_msats)

    def release(self) -> None:
        if not self.settled:
            self.settled = True
            self.budget._settle(self.amount_msats, 0)
