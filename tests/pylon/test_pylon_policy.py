"""Spend policy details: the budget ledger, one payment per job, expired invoices, DVM hygiene."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time

import pytest
import websockets

import dsrs
from dsrs.plugins import PaymentContext, PaymentProof, hookimpl, register_plugin, unregister_plugin
from dsrs_pylon import Budget, PylonLM, bolt11
from dsrs_pylon.dvm import DvmService
from dsrs_pylon.event import Event, sign_event
from dsrs_pylon.keys import Keys
from dsrs_pylon.swarm import DEFAULT_BID_MSATS, JOB_KIND
from dsrs_pylon.testing import Ledger, LedgerAccount, LedgerWalletPlugin, LoopbackRelay


def test_budget_reserve_commit_release() -> None:
    budget = Budget(100)
    a = budget.reserve(60)
    with pytest.raises(dsrs.BudgetExceededError, match="nothing was paid"):
        budget.reserve(41)
    b = budget.reserve(40)
    assert budget.remaining_msats == 0
    b.release()
    a.commit()
    a.commit()  # settling twice changes nothing
    assert (budget.spent_msats, budget.reserved_msats, budget.remaining_msats) == (60, 0, 40)
    with pytest.raises(ValueError):
        Budget(-1)


def test_budget_is_atomic_across_threads() -> None:
    budget = Budget(1_000)
    taken: list[int] = []

    def worker() -> None:
        for _ in range(200):
            try:
                budget.reserve(7).commit()
                taken.append(7)
            except dsrs.BudgetExceededError:
                pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(taken) == budget.spent_msats == 994 and budget.remaining_msats == 6


def _swarm(url: str) -> PylonLM:
    return PylonLM.new_swarm(url).with_timeout(5).with_options(feedback_timeout=3, offer_wait=0.3)


class DoubleInvoiceDvm(DvmService):
    """After being paid, asks to be paid again for the same job before delivering."""

    async def _serve(self, request: Event, t0: float) -> None:
        await super()._serve(request, t0)

    async def feedback(self, request: Event, status: str, extra: str = "", **kw: object) -> None:
        await super().feedback(request, status, extra, **kw)  # type: ignore[arg-type]
        if status == "processing":
            assert self.wallet is not None
            invoice = await self.wallet.make_invoice(21, "again")
            await super().feedback(request, "payment-required", amount=(21, invoice))
            await asyncio.sleep(0.1)


async def test_never_pays_twice_for_one_job(
    relay: LoopbackRelay, provider_account: LedgerAccount, wallet: LedgerWalletPlugin, ledger: Ledger
) -> None:
    async with DoubleInvoiceDvm(dsrs.LM("fake:echo"), [relay.url], price_msats=21, wallet=provider_account) as dvm:
        r = await _swarm(relay.url).with_targets(dvm.public_key).with_budget_msats(1_000).acall("once")
    assert r.text == "once" and r.usage.cost_msats == 21
    assert len(wallet.calls) == 1 and ledger.paid_total("customer") == 21
    assert r.raw_usage is not None and r.raw_usage["statuses"].count("payment-required") >= 1


class ExpiredInvoiceDvm(DvmService):
    async def make_invoice(self, request: Event, price: int) -> tuple[int, str]:
        invoice = bolt11.encode(
            amount_msats=price,
            payment_hash=hashlib.sha256(os.urandom(32)).digest(),
            node_secret=os.urandom(32),
            timestamp=int(time.time()) - 3_600,
            expiry=60,
        )
        return price, invoice


async def test_expired_invoice_is_refused(
    relay: LoopbackRelay, provider_account: LedgerAccount, wallet: LedgerWalletPlugin
) -> None:
    async with ExpiredInvoiceDvm(
        dsrs.LM("fake:echo"), [relay.url], price_msats=21, wallet=provider_account, payment_timeout=1
    ) as dvm:
        with pytest.raises(dsrs.PaymentError, match="expired"):
            await _swarm(relay.url).with_targets(dvm.public_key).with_budget_msats(100).acall("x")
    assert wallet.calls == []


def test_default_bid_is_capped(relay: LoopbackRelay) -> None:
    lm = _swarm(relay.url).with_budget_msats(50_000)
    tags = []

    async def capture() -> None:
        async with websockets.connect(relay.url) as ws:
            await ws.send(json.dumps(["REQ", "cap", {"kinds": [JOB_KIND]}]))
            await ws.recv()  # EOSE
            task = asyncio.create_task(lm.with_options(feedback_timeout=0.3).acall("bid?"))
            msg = json.loads(await ws.recv())
            tags.extend(msg[2]["tags"])
            with pytest.raises(dsrs.LMTimeoutError):
                await task

    asyncio.run(capture())
    assert ["bid", str(DEFAULT_BID_MSATS)] in tags
    assert ["output", "text/plain"] in tags and ["relays", relay.url] in tags
    assert ["i", "bid?", "text"] in tags


async def test_dvm_ignores_stale_duplicate_and_foreign_requests(relay: LoopbackRelay, free_dvm: DvmService) -> None:
    customer = Keys.generate()
    stale = sign_event(customer, JOB_KIND, [["i", "old", "text"]], created_at=int(time.time()) - 3_600)
    fresh = sign_event(customer, JOB_KIND, [["i", "new", "text"], ["bid", "0"]])
    foreign = sign_event(customer, JOB_KIND, [["i", "not you", "text"], ["p", Keys.generate().public_key]])
    bad_sig = {**sign_event(customer, JOB_KIND, [["i", "forged", "text"]]), "content": "tampered"}
    async with websockets.connect(relay.url) as ws:
        for ev in (stale, fresh, fresh, foreign):
            await ws.send(json.dumps(["EVENT", ev]))
            await ws.recv()
    await asyncio.sleep(0.3)
    assert free_dvm.stats.completed == 1 and free_dvm.stats.job_ids == [fresh["id"]]
    ignored = free_dvm.stats.ignored  # the foreign job (the relay itself drops the stale one and the duplicate)
    # What a relay let through anyway must still be refused by the DVM itself:
    for ev in (bad_sig, stale, fresh):
        await free_dvm._handle(ev)
    assert free_dvm.stats.ignored == ignored + 3 and free_dvm.stats.completed == 1


class FailingWallet:
    def __init__(self, code: str) -> None:
        self.code = code
        self.calls = 0

    @hookimpl
    def dsrs_pay_invoice(self, bolt11: str, amount_msats: int, context: PaymentContext) -> PaymentProof | None:
        self.calls += 1
        raise dsrs.PaymentError(f"wallet says {self.code}", code=self.code)


@pytest.mark.parametrize(("code", "spent"), [("PAYMENT_FAILED", 0), ("INSUFFICIENT_BALANCE", 0), ("timeout", 21)])
async def test_failed_payment_releases_unknown_outcome_counts(
    relay: LoopbackRelay, paid_dvm: DvmService, code: str, spent: int
) -> None:
    wallet = FailingWallet(code)
    name = register_plugin(wallet, "failing-wallet")
    try:
        lm = _swarm(relay.url).with_targets(paid_dvm.public_key).with_budget_msats(100)
        with pytest.raises(dsrs.PaymentError, match=f"wallet says {code}"):
            await lm.acall("x")
    finally:
        unregister_plugin(name)
    assert wallet.calls == 1
    assert lm.budget is not None and lm.budget.spent_msats == spent and lm.budget.reserved_msats == 0
