"""Entry point of dsrs-pylon: registers the ``pylon`` provider (Nostr NIP-90 swarm), imported lazily."""

from __future__ import annotations

from collections.abc import Callable

from dsrs import ProviderSpec
from dsrs.plugins import hookimpl


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="pylon",
            factory="dsrs_pylon.provider:PylonProvider",
            tier="swarm",
            env_vars=("PYLON_RELAY_URL", "PYLON_MNEMONIC", "PYLON_NSEC"),
            default_model="swarm",
            description="Pylon compute swarm over Nostr NIP-90, paid in msats (also local/hybrid)",
        )
    )
