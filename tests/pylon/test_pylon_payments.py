"""Payments that hold under duplicates and bad wallets: unique job ids, one payment per invoice, checked proofs."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

import dsrs
from dsrs.plugins import DsrsPluginWarning, PaymentContext, PaymentProof, hookimpl, register_plugin, unregister_plugin
from dsrs.types import Message
from dsrs_pylon import PylonLM, bolt11
from dsrs_pylon.budget import Budget
from dsrs_pylon.dvm import DvmService
from dsrs_pylon.event import Event, first_tag
from dsrs_pylon.keys import Keys
from dsrs_pylon.payment import InvoiceRegistry, invoices
from dsrs_pylon.swarm import SwarmSettings, _Job, build_job_tags
from dsrs_pylon.testing import Ledger, LedgerAccount, LedgerWalletPlugin, LoopbackRelay


def _swarm(url: str, target: str) -> PylonLM:
    return (
        PylonLM.new_swarm(url)
        .with_timeout(10)
        .with_options(feedback_timeout=5, offer_wait=0.3)
        .with_targets(target)
        .with_budget_msats(1_000)
    )


async def test_identical_prompts_in_the_same_second_are_distinct_paid_jobs(
    relay: LoopbackRelay, paid_dvm: DvmService, wallet: LedgerWalletPlugin, ledger: Ledger
) -> None:
    lm = _swarm(relay.url, paid_dvm.public_key)
    first, second = await asyncio.gather(lm.acall("same prompt"), lm.acall("same prompt"))
    assert first.text == second.text == "same prompt"
    assert first.usage.detail["job_id"] != second.usage.detail["job_id"]
    assert first.usage.cost_msats == second.usage.cost_msats == 21
    invoices = [bolt11 for bolt11, _, _ in wallet.calls]
    assert len(invoices) == 2 and len(set(invoices)) == 2  # each job paid its own invoice, once
    assert ledger.paid_total("customer") == 42 and paid_dvm.stats.completed == 2
    assert set(paid_dvm.stats.job_ids) == {first.usage.detail["job_id"], second.usage.detail["job_id"]}


class ReusedInvoiceDvm(DvmService):
    """Sends every job the invoice of its first job (a buggy or greedy provider)."""

    first: tuple[int, str] | None = None

    async def make_invoice(self, request: Event, price: int) -> tuple[int, str]:
        if self.first is None:
            self.first = await super().make_invoice(request, price)
        return self.first


async def test_an_invoice_is_paid_at_most_once_per_process(
    relay: LoopbackRelay, provider_account: LedgerAccount, wallet: LedgerWalletPlugin, ledger: Ledger
) -> None:
    async with ReusedInvoiceDvm(
        dsrs.LM("fake:echo"), [relay.url], price_msats=21, wallet=provider_account, payment_timeout=1
    ) as dvm:
        lm = _swarm(relay.url, dvm.public_key)
        r = await lm.acall("first job")
        assert r.usage.cost_msats == 21
        with pytest.raises(dsrs.PaymentError, match="already paid for job") as info:
            await lm.acall("second job")
    assert info.value.code == "invoice_reused"
    assert len(wallet.calls) == 1 and ledger.paid_total("customer") == 21
    assert lm.budget is not None and lm.budget.spent_msats == 21 and lm.budget.reserved_msats == 0


def test_registry_claims() -> None:
    registry = InvoiceRegistry(max_entries=2)
    assert registry.claim("h1", "job-a") is None
    assert registry.claim("h1", "job-a") == "job-a"  # the same job: already in flight
    assert registry.claim("h1", "job-b") == "job-a"  # another job: never paid twice
    registry.release("h1", "job-b")  # only the holder can give it back
    assert registry.holder("h1") == "job-a"
    registry.release("h1", "job-a")
    assert registry.claim("h1", "job-b") is None
    registry.claim("h2", "x")
    registry.claim("h3", "y")
    assert registry.holder("h1") is None  # bounded: the oldest is forgotten


class MalformedWallet:
    """Pays from the ledger (the money leaves), then answers with something that is not a good proof."""

    def __init__(self, account: LedgerAccount, answer: Any) -> None:
        self.account, self.answer, self.calls = account, answer, 0

    @hookimpl
    def dsrs_pay_invoice(self, bolt11: str, amount_msats: int, context: PaymentContext) -> Any:
        self.calls += 1
        preimage = self.account.pay(bolt11)
        return self.answer(preimage) if callable(self.answer) else self.answer


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (lambda preimage: {"preimage": preimage}, "returned dict instead of a dsrs.plugins.PaymentProof"),
        ("paid!", "returned str instead"),
        (lambda _p: PaymentProof(amount_msats=21, preimage="00" * 32), "preimage does not match"),
        (lambda p: PaymentProof(amount_msats=21, preimage=p, fee_msats=-3), "fee_msats=-3"),
        (lambda p: PaymentProof(amount_msats=21, preimage=p, fee_msats=10**15), "more than the budget has left"),
    ],
)
async def test_a_malformed_proof_is_a_warning_naming_the_plugin_and_the_call_waits(
    relay: LoopbackRelay, paid_dvm: DvmService, customer: LedgerAccount, ledger: Ledger, answer: Any, problem: str
) -> None:
    plugin = MalformedWallet(customer, answer)
    name = register_plugin(plugin, "sloppy-wallet")
    try:
        lm = _swarm(relay.url, paid_dvm.public_key)
        with pytest.warns(DsrsPluginWarning, match="'sloppy-wallet'") as caught:
            r = await lm.acall("money has left")
    finally:
        unregister_plugin(name)
    assert problem in str(caught[0].message)
    assert r.text == "money has left" and plugin.calls == 1  # the result the money paid for
    assert r.usage.detail["proof_valid"] is False
    assert ledger.paid_total("customer") == 21
    assert lm.budget is not None and lm.budget.spent_msats == r.usage.cost_msats <= 1_000
    assert lm.budget.reserved_msats == 0


async def test_a_good_proof_is_valid_and_silent(
    relay: LoopbackRelay, paid_dvm: DvmService, wallet: LedgerWalletPlugin
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DsrsPluginWarning)
        r = await _swarm(relay.url, paid_dvm.public_key).acall("fine")
    assert r.usage.detail["proof_valid"] is True and r.usage.cost_msats == 21 and len(wallet.calls) == 1


def test_every_request_carries_a_fresh_nonce() -> None:
    def tags() -> list[list[str]]:
        msgs = [Message("user", "x")]
        return build_job_tags(msgs, model=None, max_tokens=None, temperature=None, bid_msats=0, relays=[])

    a, b = tags(), tags()
    nonce_a, nonce_b = first_tag({"tags": a}, "nonce"), first_tag({"tags": b}, "nonce")
    assert nonce_a and nonce_b and nonce_a != nonce_b
    assert nonce_a[1] == "0" and len(nonce_a[0]) == 32  # NIP-13 shape: value, claimed difficulty 0
    assert [t for t in a if t[0] != "nonce"] == [t for t in b if t[0] != "nonce"]


async def test_a_job_that_sees_its_own_in_flight_invoice_again_waits_without_paying(
    provider_account: LedgerAccount, wallet: LedgerWalletPlugin
) -> None:
    """The same request reaching the client twice (e.g. republished): the second sighting never pays."""
    invoice = await provider_account.make_invoice(21)
    payment_hash = bolt11.decode(invoice).payment_hash
    provider = Keys.generate().public_key
    settings = SwarmSettings(relays=(), keys=Keys.generate(), budget=Budget(100), targets=(provider,))
    feedback = {"pubkey": provider, "content": "", "tags": [["status", "payment-required"], ["amount", "21", invoice]]}
    job = _Job(settings, {"id": "ef" * 32}, 100, None)
    assert invoices().claim(payment_hash, job.job_id) is None  # a payment for this job is in flight
    await job._payment_required(feedback, provider)
    assert wallet.calls == [] and job.paid_to == provider and job.engaged
    assert settings.budget is not None and settings.budget.spent_msats == 0  # counted once, by the payer
    other = _Job(settings, {"id": "12" * 32}, 100, None)
    with pytest.raises(dsrs.PaymentError, match="already paid for job efefefefefef") as info:
        await other._payment_required(feedback, provider)
    assert info.value.code == "invoice_reused" and wallet.calls == []
