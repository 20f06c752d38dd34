"""``dsrs_dspy.LM(lm_or_mux)``: a ``dspy.LM`` whose every request goes through dsrs."""

from __future__ import annotations

from typing import Any

import dspy

from dsrs_dspy._engine import AsyncDsrsEngine, DsrsEngine, Target, _Calls

__all__ = ["LM", "DsrsLM"]


class DsrsLM(dspy.LM):  # type: ignore[misc]  # dspy ships no type information
    """A ``dspy.LM`` on dsrs engines; each history entry's ``cost`` is what dsrs priced (USD).

    DSPy leaves ``cost`` empty for a custom engine (it has no price table for one); dsrs priced the
    call, and its figures ride in the response's ``provider_data["dsrs"]`` (``cost_usd``,
    ``cost_msats``, ``lane``, ``provider``, ``cache_hit``), copied here into the entry.
    """

    @property
    def dsrs_target(self) -> Target:
        """The dsrs ``LM`` or ``LaneMux`` this DSPy LM sends through."""
        target: Target = self.engine.target
        return target

    def update_history(self, entry: dict[str, Any]) -> None:
        details = _dsrs_details(entry.get("response"))
        if details is not None:
            entry["dsrs"] = details
            if entry.get("cost") is None:
                entry["cost"] = details.get("cost_usd")
            entry["cost_details"] = {"kind": "dsrs", "currency": "USD", "msats": details.get("cost_msats")}
        super().update_history(entry)


def _dsrs_details(response: Any) -> dict[str, Any] | None:
    data = getattr(response, "provider_data", None)
    if isinstance(data, dict) and isinstance(data.get("dsrs"), dict):
        return dict(data["dsrs"])
    return None


def LM(
    lm_or_mux: Target,
    *,
    lane: str | None = None,
    model: str | None = None,
    cache: bool = False,
    num_retries: int = 0,
    **kwargs: Any,
) -> DsrsLM:
    """A DSPy LM that sends DSPy's requests through ``lm_or_mux`` (a ``dsrs.LM`` or ``dsrs.LaneMux``).

    Failover, retries, msats budgets, dsrs's cache and pricing are dsrs's; so DSPy's own response
    cache is off (``cache=False``) and DSPy does not retry (``num_retries=0``) unless asked.
    ``lane`` (a LaneMux only) restricts every call to that lane name or tier (``"premium"``).
    ``model`` names the LM in DSPy's history and cache keys (default ``"dsrs:<model>"`` or
    ``"dsrs:lanemux(<lanes>)"``). Other keyword arguments are DSPy defaults for every request
    (``temperature=0.2``, ``max_tokens=512``); they override the dsrs LM's own settings.
    """
    calls = _Calls(lm_or_mux, lane)  # validates the target before DSPy sees it
    return DsrsLM(
        model or calls.name,
        engine=DsrsEngine(lm_or_mux, lane=lane),
        async_engine=AsyncDsrsEngine(lm_or_mux, lane=lane),
        cache=cache,
        num_retries=num_retries,
        **kwargs,
    )
