"""dsrs-pylon: the Pylon compute swarm over Nostr NIP-90, paid in msats, with local and hybrid modes.

>>> from dsrs_pylon import PylonLM
>>> lm = PylonLM.new_swarm("wss://relay.example").with_budget_msats(10_000).with_timeout(30)
>>> lm.model
'pylon:swarm'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsrs_pylon.budget import Budget, Reservation
    from dsrs_pylon.keys import InvalidKeyError, Keys, load_keys
    from dsrs_pylon.pylon_lm import PylonLM
    from dsrs_pylon.swarm import HandlerInfo, JobOutcome, SwarmSettings, discover_providers, run_job

__version__ = "0.1.0"

# Exports load on first use: the ``dsrs`` entry point (``dsrs_pylon._plugin``) imports this package,
# and discovery (``import dsrs; dsrs.providers()``) must not pull in pydantic, websockets or secp256k1.
_LAZY: dict[str, str] = {
    "Budget": "dsrs_pylon.budget",
    "Reservation": "dsrs_pylon.budget",
    "InvalidKeyError": "dsrs_pylon.keys",
    "Keys": "dsrs_pylon.keys",
    "load_keys": "dsrs_pylon.keys",
    "PylonLM": "dsrs_pylon.pylon_lm",
    "HandlerInfo": "dsrs_pylon.swarm",
    "JobOutcome": "dsrs_pylon.swarm",
    "SwarmSettings": "dsrs_pylon.swarm",
    "discover_providers": "dsrs_pylon.swarm",
    "run_job": "dsrs_pylon.swarm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dsrs_pylon' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Budget",
    "HandlerInfo",
    "InvalidKeyError",
    "JobOutcome",
    "Keys",
    "PylonLM",
    "Reservation",
    "SwarmSettings",
    "__version__",
    "discover_providers",
    "load_keys",
    "run_job",
]
