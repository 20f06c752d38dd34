"""Budgets of a LaneMux (msats, global and per lane): reserve an upper bound before a call, settle
to the actual cost after, atomically, so concurrent calls never overspend.

The bound is the price (via the ``dsrs_cost`` hook) of an upper bound of the prompt tokens plus
the output cap the call sends: the LM's ``max_tokens`` or, when it has none, the mux's
``default_max_tokens``, which the mux then *sends* so the provider cannot bill more than was
reserved. A lane whose price is unknown reserves its (or the mux's) ``reserve_msats``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dsrs import errors
from dsrs._budget import Reservation
from dsrs._usage import LmUsage
from dsrs.types import LMRequest, LMResponse

if TYPE_CHECKING:
    from dsrs._lanemux.mux import Lane, LaneMux

__all__ = ["budget_scopes", "budgeted", "estimate_msats", "reserve", "settle"]


def budget_scopes(mux: LaneMux, lane: Lane) -> dict[str, int | None]:
    return {f"{mux.name}:global": mux.budget_msats, f"{mux.name}:lane:{lane.name}": lane.budget_msats}


def budgeted(mux: LaneMux, lane: Lane) -> bool:
    return mux.budget_msats is not None or lane.budget_msats is not None


def prompt_token_bound(request: LMRequest) -> int:
    """Byte-level tokenizers never produce more tokens than UTF-8 bytes; plus per-message framing."""
    prompt = sum(len(m.text.encode("utf-8")) + 8 for m in request.messages) + 16
    for m in request.messages:
        if not isinstance(m.content, str) and m.content is not None:
            # Media parts: their size in bytes bounds what a provider may bill for them.
            prompt += sum(len(getattr(p, "data", None) or b"") or 2048 for p in m.content if p.kind != "text")
    if request.tools:
        prompt += sum(len(repr(t.to_dict()).encode("utf-8")) for t in request.tools)
    return prompt


def estimate_msats(mux: LaneMux, lane: Lane, request: LMRequest) -> int:
    """The msats one call reserves: an upper bound of its cost (see the module docstring)."""
    if lane.reserve_msats is not None:
        return lane.reserve_msats
    from dsrs.plugins import hooks

    completion = request.max_tokens or mux.default_max_tokens
    usage = LmUsage.from_tokens(prompt_token_bound(request), completion)
    cost = hooks().cost(f"{request.provider}:{request.model}", usage)
    msats = cost.resolved().msats if cost is not None else None
    if msats is None:
        if mux.reserve_msats is not None:
            return mux.reserve_msats
        raise errors.BudgetExceededError(
            f"the price of {request.provider}:{request.model} is unknown, so a budget cannot bound it; "
            f"give the lane (or the LaneMux) reserve_msats=",
            provider=request.provider,
            model=request.model,
        )
    return msats


async def reserve(mux: LaneMux, lane: Lane, request: LMRequest) -> Reservation | None:
    """Hold the bound of one call on the lane's and the global budget (``None``: not budgeted)."""
    if not budgeted(mux, lane):
        return None
    amount = estimate_msats(mux, lane, request)
    try:
        return await mux.budgets.reserve(budget_scopes(mux, lane), amount)
    except errors.BudgetExceededError as exc:
        exc.provider, exc.model = request.provider, request.model
        raise


async def settle(mux: LaneMux, reservation: Reservation | None, response: LMResponse | None) -> None:
    """Settle a hold to what the call cost: nothing for a failure or a cache hit; the whole hold when
    the price is unknown (never under-count)."""
    if reservation is None:
        return
    if response is None or response.usage.cache_hit:
        actual = 0
    elif response.usage.cost_msats is None:
        actual = reservation.amount_msats
    else:
        actual = max(0, response.usage.cost_msats)
    await mux.budgets.settle(reservation, actual)
