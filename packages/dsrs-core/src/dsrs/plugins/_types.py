"""Values passed through the hooks that are not core data types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dsrs.errors import ProviderFailure

__all__ = ["PaymentContext", "PaymentProof", "ProviderFailure"]


@dataclass(frozen=True, slots=True)
class PaymentContext:
    """Why a payment is asked for: which provider, which job, for whom, under what bid."""

    provider: str
    job_id: str | None = None
    counterparty: str | None = None
    bid_msats: int | None = None
    budget_remaining_msats: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PaymentProof:
    """A completed payment."""

    amount_msats: int
    preimage: str | None = None
    fee_msats: int = 0
    wallet: str = ""
