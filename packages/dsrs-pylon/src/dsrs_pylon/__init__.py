"""dsrs-pylon: the Pylon compute swarm over Nostr NIP-90, paid in msats, with local and hybrid modes.

>>> from dsrs_pylon import PylonLM
>>> lm = PylonLM.new_swarm("wss://relay.example").with_budget_msats(10_000).with_timeout(30)
>>> lm.model
'pylon:swarm'
"""

from __future__ import annotations

from dsrs_pylon.budget import Budget, Reservation
from dsrs_pylon.keys import InvalidKeyError, Keys, load_keys
from dsrs_pylon.pylon_lm import PylonLM
from dsrs_pylon.swarm import HandlerInfo, JobOutcome, SwarmSettings, discover_providers, run_job

__version__ = "0.1.0"

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
