"""Nostr Wallet Connect encryption over the real relay: NIP-44 v2 when the wallet offers it, NIP-04 otherwise."""

from __future__ import annotations

import pytest

import dsrs
from dsrs_pylon import PylonLM
from dsrs_pylon.dvm import DvmService
from dsrs_pylon.nwc import NwcClient, NwcError
from dsrs_pylon.testing import Ledger, LoopbackRelay, NwcWalletService


@pytest.mark.parametrize(
    ("offered", "expected"),
    [(("nip44_v2",), "nip44_v2"), (("nip04",), "nip04"), (("nip44_v2", "nip04"), "nip44_v2")],
)
async def test_paid_job_with_wallets_of_each_encryption(
    relay: LoopbackRelay, ledger: Ledger, monkeypatch: pytest.MonkeyPatch, offered: tuple[str, ...], expected: str
) -> None:
    """Customer and DVM both pay/invoice through NWC; the client picks the scheme from the info event."""
    ledger.account("customer", 1_000)
    ledger.account("provider", 0)
    async with NwcWalletService(ledger, [relay.url], encryption=offered) as service:
        monkeypatch.setenv("PYLON_NWC_URI", service.connection_uri("customer"))
        async with (
            NwcClient(service.connection_uri("provider")) as provider_wallet,
            DvmService(dsrs.LM("fake:echo"), [relay.url], price_msats=25, wallet=provider_wallet) as dvm,
        ):
            assert provider_wallet.encryption == expected
            lm = PylonLM.new_swarm(relay.url).with_timeout(10).with_budget_msats(100).with_targets(dvm.public_key)
            r = await lm.acall("pay me privately")
        assert r.text == "pay me privately" and r.usage.cost_msats == 25
        assert r.usage.detail["proof_valid"] is True  # the wallet's preimage matched the invoice
        assert ledger.balances == {"customer": 975, "provider": 25}
        assert "pay_invoice" in [m for _, m in service.requests]
        assert set(service.request_schemes) == {expected}
        requests = service.received  # kind 23194 is ephemeral: what went over the relay
    assert requests and all(["encryption", expected] in e["tags"] for e in requests)
    assert all(("?iv=" in e["content"]) == (expected == "nip04") for e in requests)
    assert not any("lnbcrt" in e["content"] or "pay_invoice" in e["content"] for e in requests)


async def test_legacy_wallet_without_encryption_tag_gets_nip04(relay: LoopbackRelay, ledger: Ledger) -> None:
    ledger.account("a", 7)
    service = NwcWalletService(ledger, [relay.url], encryption=("nip04",))
    async with service, NwcClient(service.connection_uri("a")) as client:
        assert client.wallet_encryption == () and client.encryption == "nip04"
        assert await client.get_balance() == 7


async def test_forcing_nip04_on_a_nip44_only_wallet_is_a_clear_error(relay: LoopbackRelay, ledger: Ledger) -> None:
    ledger.account("a", 7)
    async with NwcWalletService(ledger, [relay.url], encryption=("nip44_v2",)) as service:
        async with NwcClient(service.connection_uri("a"), encryption="nip04") as client:
            assert client.wallet_encryption == ("nip44_v2",)
            with pytest.raises(NwcError, match="UNSUPPORTED_ENCRYPTION") as info:
                await client.get_balance()
            assert info.value.code == "UNSUPPORTED_ENCRYPTION"
        async with NwcClient(service.connection_uri("a")) as client:
            assert client.encryption == "nip44_v2" and await client.get_balance() == 7


def test_unknown_forced_scheme_is_refused() -> None:
    uri = f"nostr+walletconnect://{'a' * 64}?relay=ws://127.0.0.1:1&secret={'1' * 64}"
    with pytest.raises(NwcError, match="encryption must be one of"):
        NwcClient(uri, encryption="rot13")
