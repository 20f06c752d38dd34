"""Entry point of dsrs-pylon: the ``pylon`` provider and the Nostr Wallet Connect wallet hook.

Both are cheap to load: the provider class is named as a string and imported on first use, and the
wallet hook imports the NWC client only when ``PYLON_NWC_URI`` is set and an invoice is to be paid.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dsrs import ProviderSpec
from dsrs.plugins import PaymentContext, PaymentProof, hookimpl


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="pylon",
            factory="dsrs_pylon.provider:PylonProvider",
            tier="swarm",
            env_vars=("PYLON_RELAY_URL", "PYLON_MNEMONIC", "PYLON_NSEC", "PYLON_NWC_URI"),
            default_model="swarm",
            description="Pylon compute swarm over Nostr NIP-90, paid in msats (also pylon:local / pylon:hybrid)",
        )
    )


@hookimpl
def dsrs_pay_invoice(bolt11: str, amount_msats: int, context: PaymentContext) -> PaymentProof | None:
    """Pay from the Nostr Wallet Connect wallet in ``PYLON_NWC_URI``; ``None`` when it is not set."""
    uri = os.environ.get("PYLON_NWC_URI", "").strip()
    if not uri:
        return None
    from dsrs_pylon.nwc import pay_invoice_sync

    return pay_invoice_sync(uri, bolt11, amount_msats, context)
