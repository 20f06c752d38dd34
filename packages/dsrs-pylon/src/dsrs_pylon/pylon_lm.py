"""``PylonLM``: the seed's builder API, as a :class:`dsrs.LM` subclass (usable anywhere an LM is).

>>> lm = PylonLM.new_swarm("ws://127.0.0.1:7777").with_budget_msats(10_000).with_timeout(30)
>>> lm.model, lm.budget.limit_msats, lm.timeout
('pylon:swarm', 10000, 30.0)
>>> PylonLM.new_local().with_backend("ollama").with_model("llama2").model
'pylon:local:llama2'
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from pydantic import field_validator

from dsrs import LM
from dsrs_pylon.budget import Budget
from dsrs_pylon.keys import Keys, npub_to_hex

__all__ = ["PylonLM"]


def _seconds(value: float | timedelta | None) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return None if value is None else float(value)


class PylonLM(LM):
    """A Pylon LM: ``pylon:swarm``, ``pylon:local[:model]`` or ``pylon:hybrid`` with Pylon options."""

    def __init__(self, model: str = "pylon:swarm", /, **kwargs: Any) -> None:
        # No automatic retries by default: a swarm job has its own offer and phase handling, a retry is
        # a new paid job, and a failure after paying is never retried (see dsrs_pylon.swarm.run_job).
        kwargs.setdefault("retries", 0)
        super().__init__(model, **kwargs)

    @field_validator("model")
    @classmethod
    def _is_pylon(cls, v: str) -> str:
        if not v.strip().lower().startswith("pylon:"):
            raise ValueError(f"a PylonLM model starts with 'pylon:', got {v!r}")
        return v.strip()

    # --- constructors (the seed's) ----------------------------------------------------------

    @classmethod
    def new_swarm(cls, relay_url: str | Sequence[str] | None = None) -> PylonLM:
        """The NIP-90 swarm via ``relay_url`` (one URL, comma-separated, or a list; default ``PYLON_RELAY_URL``)."""
        if relay_url is None:
            return cls("pylon:swarm")
        relays = relay_url.split(",") if isinstance(relay_url, str) else list(relay_url)
        return cls("pylon:swarm", relays=tuple(r.strip() for r in relays if r.strip()))

    @classmethod
    def new_local(cls) -> PylonLM:
        """A local backend (Ollama, llama.cpp, ...), free and private."""
        return cls("pylon:local")

    @classmethod
    def new_hybrid(cls, relay_url: str | Sequence[str] | None = None) -> PylonLM:
        """Local first (``with_local_timeout``), then the swarm (``with_swarm_fallback``)."""
        lm = cls.new_swarm(relay_url)
        return lm._copy(model="pylon:hybrid")

    # --- builders ---------------------------------------------------------------------------

    def _copy(self, **changes: Any) -> PylonLM:
        return cast(PylonLM, self._replace(**changes))

    @property
    def mode(self) -> str:
        return self.model.split(":")[1].lower()

    @property
    def budget(self) -> Budget | None:
        budget = self.options.get("budget")
        return budget if isinstance(budget, Budget) else None

    def with_budget_msats(self, msats: int) -> PylonLM:
        """Spend at most ``msats`` in total across this LM and every copy made from it."""
        return self.with_options(budget=Budget(msats))

    def with_bid_msats(self, msats: int | None) -> PylonLM:
        """Offer at most ``msats`` per job (default 1,000, never more than what is left of the budget)."""
        return self.with_options(bid_msats=msats)

    def with_timeout(self, timeout: float | timedelta | None) -> PylonLM:  # type: ignore[override]
        return self._copy(timeout=_seconds(timeout))

    def with_backend(self, backend: str) -> PylonLM:
        """Local backend provider name (``"ollama"``, ``"gptoss"``, ...)."""
        return self.with_options(backend=backend)

    def with_model(self, model: str) -> PylonLM:
        """Model name: the local backend's model and the swarm's ``model`` param."""
        return self._copy(model=f"pylon:{self.mode}:{model}" if model else f"pylon:{self.mode}")

    def with_local_timeout(self, timeout: float | timedelta) -> PylonLM:
        return self.with_options(local_timeout=_seconds(timeout))

    def with_swarm_fallback(self, enabled: bool = True) -> PylonLM:
        return self.with_options(swarm_fallback=enabled)

    def with_relays(self, *relays: str) -> PylonLM:
        return self.with_options(relays=tuple(relays) or None)

    def with_targets(self, *pubkeys: str) -> PylonLM:
        """Direct jobs to these providers (hex or npub); results from others are ignored."""
        return self.with_options(targets=tuple(npub_to_hex(p) for p in pubkeys) or None)

    def with_discovery(self, enabled: bool = True) -> PylonLM:
        """Target the providers that announce kind 5050 through NIP-89."""
        return self.with_options(discover=enabled or None)

    def with_encryption(self, enabled: bool | None = True, scheme: str | None = None) -> PylonLM:
        """Encrypt the job's inputs and params to its one target provider (NIP-90 encrypted requests).

        On by default when the job targets exactly one provider; ``False`` turns it off, ``None``
        restores the default. ``scheme`` forces ``"nip44_v2"`` or ``"nip04"``; by default NIP-44 v2,
        NIP-04 only when the provider's NIP-89 announcement offers only that.
        """
        from dsrs_pylon.encryption import SCHEMES  # here: importing PylonLM needs no cipher library

        if enabled is not None and not isinstance(enabled, bool):
            raise TypeError(f"with_encryption: enabled must be True, False or None, got {enabled!r}")
        if scheme is not None and scheme not in SCHEMES:
            raise ValueError(f"with_encryption: scheme must be one of {list(SCHEMES)}, got {scheme!r}")
        return self.with_options(encrypt=enabled, encryption=scheme)

    def with_identity(self, identity: Keys | str) -> PylonLM:
        """Sign jobs with this key (a :class:`Keys`, nsec, hex or mnemonic); never shown in repr."""
        return self.with_options(identity=identity if isinstance(identity, Keys) else Keys.parse(identity))

    def with_options(self, **options: Any) -> PylonLM:
        return cast(PylonLM, super().with_options(**options))

    def with_temperature(self, temperature: float | None) -> PylonLM:
        return self._copy(temperature=temperature)

    def with_max_tokens(self, max_tokens: int | None) -> PylonLM:
        return self._copy(max_tokens=max_tokens)

    def with_cache(self, enabled: bool = True) -> PylonLM:
        return self._copy(cache=enabled)

    def __repr__(self) -> str:
        return "Pylon" + super().__repr__()

    __str__ = __repr__
