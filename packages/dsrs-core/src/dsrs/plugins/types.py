"""Values passed through the hooks that are not core data types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PaymentContext", "PaymentProof", "ProviderFailure"]


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """A failed call, before classification.

    Exactly what the provider saw: the HTTP ``status``/``headers``/``body`` of an error response,
    or the ``exception`` raised on the way, or a protocol-level ``code`` (e.g. NIP-90 feedback).
    ``wire`` names the wire format (``"openai-chat"``), so a codec's classifier can claim
    failures of every provider that speaks it. ``secrets`` lists values to redact from anything derived from it.
    """

    provider: str
    model: str | None = None
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    exception: BaseException | None = None
    code: str | None = None
    message: str | None = None
    wire: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)


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
