"""The swarm end to end against a real relay on 127.0.0.1: jobs, payments, policy, failures."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import websockets

import dsrs
from dsrs_pylon import PylonLM, discover_providers
from dsrs_pylon.dvm import DvmService
from dsrs_pylon.event import Event, sign_event, tag_values
from dsrs_pylon.keys import Keys
from dsrs_pylon.swarm import FEEDBACK_KIND, JOB_KIND, RESULT_KIND
from dsrs_pylon.testing import Ledger, LedgerAccount, LedgerWalletPlugin, LoopbackRelay, NwcWalletService

from .conftest import RelayProxy


def swarm(url: str, **options: Any) -> PylonLM:
    return PylonLM.new_swarm(url).with_timeout(10).with_options(feedback_timeout=5, offer_wait=0.3, **options)


async def test_free_job_any_provider(relay: LoopbackRelay, free_dvm: DvmService) -> None:
    r = await swarm(relay.url).acall("hello swarm")
    assert r.text == "hello swarm"
    assert r.provider == "pylon" and r.model == "swarm"
    assert r.usage.cost_msats == 0 and r.usage.cost_usd == 0
    assert r.usage.prompt_tokens == 2 and r.usage.completion_tokens == 2
    assert r.usage.detail["provider_pubkey"] == free_dvm.public_key
    assert r.usage.detail["pylon_path"] == "swarm"


async def test_job_carries_params_and_conversation(relay: LoopbackRelay, free_dvm: DvmService) -> None:
    lm = swarm(relay.url).with_model("llama3").with_max_tokens(3).with_temperature(0.5)
    r = await lm.acall([{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three four"}])
    assert r.text == "one two three"  # fake:echo truncated by max_tokens=3 on the DVM
    assert r.model == "swarm:llama3"


async def test_paid_job_through_nwc_wallet_service(
    relay: LoopbackRelay, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Customer pays through PYLON_NWC_URI (NIP-47 over the relay); the DVM invoices through NWC too."""
    from dsrs_pylon.nwc import NwcClient

    ledger.account("customer", 1_000)
    ledger.account("provider", 0)
    async with NwcWalletService(ledger, [relay.url]) as service:
        monkeypatch.setenv("PYLON_NWC_URI", service.connection_uri("customer"))
        async with (
            NwcClient(service.connection_uri("provider")) as provider_wallet,
            DvmService(
                dsrs.LM("fake:echo"), [relay.url], price_msats=25, wallet=provider_wallet, payment_timeout=5
            ) as dvm,
        ):
            lm = swarm(relay.url).with_budget_msats(100)
            r = await lm.acall("Capital of France?")
            assert r.text == "Capital of France?"
            assert r.usage.cost_msats == 25 and r.usage.cost_usd == pytest.approx(25 / dsrs.msats_per_usd())
            assert r.raw_usage is not None and r.raw_usage["statuses"][:2] == ["payment-required", "processing"]
            assert ledger.balances == {"customer": 975, "provider": 25}
            assert lm.budget is not None and lm.budget.spent_msats == 25
            assert dvm.stats.earned_msats == 25
            methods = [m for _, m in service.requests]
            assert "pay_invoice" in methods and "make_invoice" in methods and "lookup_invoice" in methods


async def test_paid_job_through_predict(
    relay: LoopbackRelay, provider_account: LedgerAccount, wallet: LedgerWalletPlugin
) -> None:
    """The seed's program: Predict over a paid Pylon swarm lane; cost_msats is what was paid."""
    if not all(hasattr(dsrs, n) for n in ("Predict", "Signature", "InputField", "OutputField", "context")):
        pytest.skip("dsrs.Predict has not landed yet (issue 3)")

    class QA(dsrs.Signature):
        """Answer briefly."""

        question: str = dsrs.InputField()
        answer: str = dsrs.OutputField()

    reply = "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"
    async with DvmService(
        dsrs.LM("fake:script", responses=[reply]), [relay.url], price_msats=21, wallet=provider_account
    ) as dvm:
        lm = swarm(relay.url).with_targets(dvm.public_key).with_budget_msats(100)
        with dsrs.context(lm=lm):
            pred = await dsrs.Predict(QA).aforward(question="Capital of France?")
    assert pred.answer == "Paris"
    assert pred.lm_usage.cost_msats == 21
    assert len(wallet.calls) == 1 and wallet.calls[0][1] == 21


async def test_targeted_job_goes_to_the_target(relay: LoopbackRelay) -> None:
    async with (
        DvmService(dsrs.LM("fake:script", responses=["from A"]), [relay.url]) as a,
        DvmService(dsrs.LM("fake:script", responses=["from B"]), [relay.url]) as b,
    ):
        r = await swarm(relay.url).with_targets(Keys.parse(b.keys.nsec()).npub).acall("who?")
        assert r.text == "from B" and r.usage.detail["provider_pubkey"] == b.public_key
        await asyncio.sleep(0.05)
        assert a.stats.completed == 0 and a.stats.ignored >= 1 and b.stats.completed == 1


class ImpostorDvm:
    """Publishes a *validly signed* result for any job once it sees the real provider processing it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys = Keys.generate()
        self.sent = 0

    async def run(self) -> None:
        async with websockets.connect(self.url) as ws:
            await ws.send(json.dumps(["REQ", "imp", {"kinds": [FEEDBACK_KIND], "since": int(time.time()) - 5}]))
            async for raw in ws:
                msg = json.loads(raw)
                if msg[0] == "EVENT":
                    ev: Event = msg[2]
                    if any(t == ["processing"] for t in tag_values(ev, "status")):
                        job = tag_values(ev, "e")[0][0]
                        fake = sign_event(self.keys, RESULT_KIND, [["e", job], ["p", ev["tags"][-1][1]]], "IMPOSTOR")
                        await ws.send(json.dumps(["EVENT", fake]))
                        self.sent += 1


async def test_result_only_from_the_provider_we_paid(
    relay: LoopbackRelay, provider_account: LedgerAccount, wallet: LedgerWalletPlugin
) -> None:
    impostor = ImpostorDvm(relay.url)
    task = asyncio.create_task(impostor.run())
    try:
        async with DvmService(
            dsrs.LM("fake:echo", delay=0.6), [relay.url], price_msats=21, wallet=provider_account
        ) as dvm:
            await asyncio.sleep(0.05)
            r = await swarm(relay.url).with_budget_msats(100).acall("real answer")
            assert r.text == "real answer" and r.usage.detail["provider_pubkey"] == dvm.public_key
            assert impostor.sent >= 1
    finally:
        task.cancel()


@pytest.mark.parametrize("mode", ["tamper", "forge"])
async def test_tampered_or_forged_results_are_rejected(
    relay: LoopbackRelay, free_dvm: DvmService, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    forger = Keys.generate()

    def rewrite(msg: list[Any]) -> list[Any]:
        if msg[0] == "EVENT" and msg[2].get("kind") == RESULT_KIND:
            ev = dict(msg[2])
            ev["content"] = "evil"
            if mode == "forge":  # consistent id, signature by someone else, claiming the DVM's pubkey
                other = sign_event(forger, ev["kind"], ev["tags"], ev["content"], created_at=ev["created_at"])
                from dsrs_pylon.event import event_id

                ev["id"] = event_id(ev["pubkey"], ev["created_at"], ev["kind"], ev["tags"], ev["content"])
                ev["sig"] = other["sig"]
            return ["EVENT", msg[1], ev]
        return msg

    caplog.set_level(logging.WARNING, "dsrs_pylon")
    async with RelayProxy(relay.url, rewrite) as proxy:
        lm = swarm(proxy.url).with_timeout(1.5)
        with pytest.raises(dsrs.LMTimeoutError):
            await lm.acall("hello")
    assert "bad id or signature" in caplog.text


async def _priced(relay: LoopbackRelay, account: LedgerAccount, **kw: Any) -> DvmService:
    return DvmService(dsrs.LM("fake:echo"), [relay.url], wallet=account, payment_timeout=2, **kw)


class WrongInvoiceDvm(DvmService):
    """Puts an invoice for a different amount than its amount tag."""

    async def make_invoice(self, request: Event, price: int) -> tuple[int, str]:
        assert self.wallet is not None
        return price, await self.wallet.make_invoice(price + 5, "more than quoted")


class OverBidDvm(DvmService):
    """Quotes within the bid, then asks for far more."""

    async def make_invoice(self, request: Event, price: int) -> tuple[int, str]:
        assert self.wallet is not None
        return 5_000, await self.wallet.make_invoice(5_000, "greedy")


@pytest.mark.parametrize(
    ("cls", "match"), [(WrongInvoiceDvm, "differs from the amount tag"), (OverBidDvm, "above our bid")]
)
async def test_bad_invoices_refused_nothing_paid(
    relay: LoopbackRelay,
    provider_account: LedgerAccount,
    wallet: LedgerWalletPlugin,
    ledger: Ledger,
    cls: type[DvmService],
    match: str,
) -> None:
    async with cls(
        dsrs.LM("fake:echo"), [relay.url], price_msats=21, wallet=provider_account, payment_timeout=2
    ) as dvm:
        lm = swarm(relay.url).with_targets(dvm.public_key).with_budget_msats(1_000).with_bid_msats(100)
        with pytest.raises(dsrs.PaymentError, match=match) as info:
            await lm.acall("x")
    assert "nothing was paid" in str(info.value)
    assert wallet.calls == [] and ledger.payments == []
    assert lm.budget is not None and lm.budget.spent_msats == 0 and lm.budget.reserved_msats == 0


async def test_no_budget_means_no_payment(
    relay: LoopbackRelay, paid_dvm: DvmService, wallet: LedgerWalletPlugin
) -> None:
    with pytest.raises(dsrs.BudgetExceededError, match="no budget"):
        await swarm(relay.url).with_targets(paid_dvm.public_key).with_bid_msats(100).acall("x")
    assert wallet.calls == []


async def test_bid_below_price_gets_provider_error(
    relay: LoopbackRelay, paid_dvm: DvmService, wallet: LedgerWalletPlugin
) -> None:
    lm = swarm(relay.url).with_targets(paid_dvm.public_key).with_budget_msats(10)
    with pytest.raises(dsrs.ProviderUnavailableError, match="bid too low"):
        await lm.acall("x")
    assert wallet.calls == []


async def test_concurrent_jobs_never_overspend(
    relay: LoopbackRelay, provider_account: LedgerAccount, wallet: LedgerWalletPlugin, ledger: Ledger
) -> None:
    async with DvmService(
        dsrs.LM("fake:echo"), [relay.url], price_msats=30, wallet=provider_account, payment_timeout=5
    ) as dvm:
        lm = swarm(relay.url).with_targets(dvm.public_key).with_budget_msats(1_000).with_bid_msats(30).with_timeout(30)
        results = await asyncio.gather(*(lm.acall(f"job {i}") for i in range(100)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, dsrs.LMResponse)]
    refused = [r for r in results if isinstance(r, dsrs.BudgetExceededError)]
    others = [r for r in results if not isinstance(r, (dsrs.LMResponse, dsrs.BudgetExceededError))]
    assert not others, others[:3]
    assert len(ok) == 33 and len(refused) == 67
    assert sum(r.usage.cost_msats or 0 for r in ok) == 990
    assert ledger.paid_total("customer") == 990 == lm.budget.spent_msats  # type: ignore[union-attr]
    assert lm.budget.reserved_msats == 0  # type: ignore[union-attr]
    assert len(wallet.calls) == 33


async def test_silent_provider_times_out_and_closes_everything(relay: LoopbackRelay) -> None:
    async with RelayProxy(relay.url) as proxy:
        lm = swarm(proxy.url).with_options(feedback_timeout=0.5)
        t0 = time.perf_counter()
        with pytest.raises(dsrs.LMTimeoutError, match="no provider answered"):
            await lm.acall("anyone?")
        assert time.perf_counter() - t0 < 2
        await asyncio.sleep(0.1)
        reqs, closes = proxy.sent("REQ"), proxy.sent("CLOSE")
        assert len(reqs) == 1 and closes == [["CLOSE", reqs[0][1]]]
        assert proxy.open_connections == proxy.closed_connections == 1


async def test_relay_down_is_provider_unavailable() -> None:
    from dsrs_pylon.testing import free_port

    lm = swarm(f"ws://127.0.0.1:{free_port()}")
    with pytest.raises(dsrs.ProviderUnavailableError, match="no relay reachable"):
        await lm.acall("x")


async def test_relay_dies_mid_job() -> None:
    with LoopbackRelay() as relay:
        # Phase timeouts far above the relay's shutdown time, so only the lost connection can end
        # the call (under CI load the relay thread may take seconds to close its sockets).
        lm = PylonLM.new_swarm(relay.url).with_timeout(60).with_options(feedback_timeout=60, offer_wait=0.3)
        async with websockets.connect(relay.url) as watcher:
            await watcher.send(json.dumps(["REQ", "w", {"kinds": [JOB_KIND]}]))
            await watcher.recv()  # EOSE
            task = asyncio.create_task(lm.acall("x"))
            await watcher.recv()  # the job is published: the client is now waiting for providers
        relay.stop()
        with pytest.raises(dsrs.ProviderUnavailableError, match="lost the connection"):
            await task


async def test_one_relay_down_one_up(relay: LoopbackRelay, free_dvm: DvmService) -> None:
    from dsrs_pylon.testing import free_port

    r = await PylonLM.new_swarm([f"ws://127.0.0.1:{free_port()}", relay.url]).with_timeout(10).acall("still works")
    assert r.text == "still works" and r.usage.detail["relays"] == [relay.url]


async def test_nip42_auth_is_answered() -> None:
    with LoopbackRelay(nip42=True) as relay:
        # The relay really demands AUTH: an unauthenticated write is refused.
        async with websockets.connect(relay.url) as ws:
            ev = sign_event(Keys.generate(), 1, [], "hi")
            await ws.send(json.dumps(["EVENT", ev]))
            replies = [json.loads(await ws.recv()) for _ in range(2)]
            ok = next(m for m in replies if m[0] == "OK")
            assert ok[2] is False and ok[3].startswith("auth-required")
        async with DvmService(dsrs.LM("fake:echo"), [relay.url]):
            r = await swarm(relay.url).acall("behind auth")
        assert r.text == "behind auth"


async def test_nip89_discovery(relay: LoopbackRelay, free_dvm: DvmService) -> None:
    found = await discover_providers([relay.url])
    assert [h.pubkey for h in found] == [free_dvm.public_key] and found[0].name == "free"
    r = await swarm(relay.url).with_discovery().acall("found you")
    assert r.usage.detail["provider_pubkey"] == free_dvm.public_key


async def test_budget_is_shared_by_copies() -> None:
    lm = PylonLM.new_swarm("ws://127.0.0.1:1").with_budget_msats(500)
    copy = lm.with_temperature(0.2).with_max_tokens(9).with_timeout(3)
    assert isinstance(copy, PylonLM) and copy.budget is lm.budget
    assert (
        copy.build_request("x").cache_key()
        == lm.with_budget_msats(500)
        .with_temperature(0.2)
        .with_max_tokens(9)
        .with_timeout(3)
        .build_request("x")
        .cache_key()
    )


def test_seed_api_shapes() -> None:
    from datetime import timedelta

    lm = PylonLM.new_swarm("wss://nexus.example").with_budget_msats(10_000).with_timeout(timedelta(seconds=30))
    assert lm.model == "pylon:swarm" and lm.timeout == 30 and lm.options["relays"] == ("wss://nexus.example",)
    local = PylonLM.new_local().with_backend("ollama").with_model("llama2")
    assert local.model == "pylon:local:llama2" and local.options["backend"] == "ollama"
    hybrid = PylonLM.new_hybrid().with_local_timeout(timedelta(seconds=5)).with_swarm_fallback(True)
    assert hybrid.model == "pylon:hybrid" and hybrid.options["local_timeout"] == 5
    assert isinstance(hybrid, dsrs.LM) and hybrid.provider_name == "pylon"
    assert dsrs.LM("pylon:local:llama2").provider_name == "pylon"
    with pytest.raises(ValueError):
        PylonLM("openai:gpt-4o")


def test_identity_never_leaks() -> None:
    keys = Keys.generate()
    lm = PylonLM.new_swarm("ws://127.0.0.1:1").with_identity(keys.nsec())
    text = repr(lm) + str(lm) + repr(lm.provider()) + lm.build_request("x").cache_key()
    text += json.dumps(lm.build_request("x").canonical(), default=str)
    assert keys.nsec() not in text and keys.secret_hex() not in text
    assert keys.public_key in json.dumps(lm.build_request("x").canonical(), default=str)


def test_cli_serve_is_a_working_dvm(relay: LoopbackRelay) -> None:
    env = {**os.environ, "PYLON_NSEC": Keys.generate().nsec()}
    env.pop("PYLON_NWC_URI", None)
    script = os.path.join(os.path.dirname(sys.executable), "dsrs-pylon")
    proc = subprocess.Popen(
        [script, "serve", "--model", "fake:echo", "--relay", relay.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        assert "serving fake:echo as npub1" in first, first + (proc.stderr.read() if proc.poll() is not None else "")
        pubkey = first.split("(")[1].split(")")[0]
        assert "ready" in proc.stdout.readline()
        r = swarm(relay.url).with_targets(pubkey).call("via the CLI")
        assert r.text == "via the CLI" and r.usage.detail["provider_pubkey"] == pubkey
        assert r.usage.detail["encryption"] == "nip44_v2"  # one target: a private job, which serve accepts
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped after 1 jobs" in out
    assert env["PYLON_NSEC"] not in out + err


def test_whoami_prints_npub_not_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from dsrs_pylon.cli import main

    keys = Keys.generate()
    monkeypatch.setenv("PYLON_NSEC", keys.nsec())
    assert main(["whoami"]) == 0
    out = capsys.readouterr().out
    assert keys.npub in out and keys.nsec() not in out


async def test_nwc_errors_are_payment_errors(relay: LoopbackRelay, ledger: Ledger) -> None:
    from dsrs_pylon.nwc import NwcClient, NwcError

    ledger.account("poor", 5)
    ledger.account("rich", 0)
    async with NwcWalletService(ledger, [relay.url]) as service:
        invoice = ledger.issue("rich", 100)
        async with NwcClient(service.connection_uri("poor")) as poor:
            with pytest.raises(NwcError) as info:
                await poor.pay_invoice(invoice)
            assert info.value.code == "INSUFFICIENT_BALANCE" and isinstance(info.value, dsrs.PaymentError)
        stranger = Keys.generate()
        uri = f"nostr+walletconnect://{service.keys.public_key}?relay={relay.url}&secret={stranger.secret_hex()}"
        async with NwcClient(uri) as unknown:
            with pytest.raises(NwcError) as info:
                await unknown.get_balance()
            assert info.value.code == "UNAUTHORIZED"
    assert ledger.balances == {"poor": 5, "rich": 0}
    assert "secret" not in repr(NwcClient(uri)) and stranger.secret_hex() not in repr(NwcClient(uri))


def test_no_wallet_is_a_clear_payment_error(relay: LoopbackRelay, provider_account: LedgerAccount) -> None:
    from .conftest import DvmThread

    with DvmThread(
        lambda: DvmService(dsrs.LM("fake:echo"), [relay.url], price_msats=21, wallet=provider_account)
    ) as dvm:
        lm = swarm(relay.url).with_targets(dvm.public_key).with_budget_msats(100)
        with pytest.raises(dsrs.PaymentError, match="PYLON_NWC_URI"):
            lm.call("x")
        assert lm.budget is not None and lm.budget.spent_msats == 0 and lm.budget.reserved_msats == 0


def test_wallet_plugin_registered_through_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsrs.plugins import PaymentContext, get_host

    assert "pylon" in [p.name for p in get_host().plugins]
    assert get_host().hooks.has_wallet
    # Without PYLON_NWC_URI the NWC wallet steps aside (returns None) for other wallet plugins.
    monkeypatch.delenv("PYLON_NWC_URI", raising=False)
    assert get_host().hooks.pay_invoice("lnbcrt1...", 1, PaymentContext(provider="pylon")) is None


async def test_relay_closing_the_subscription_ends_the_wait(relay: LoopbackRelay) -> None:
    proxy: RelayProxy

    def close_after_ok(msg: list[Any]) -> list[Any]:
        if msg[0] == "OK":
            sub = proxy.sent("REQ")[-1][1]
            return [msg, ["CLOSED", sub, "error: shutting down idle subscription"]]
        return msg

    async with RelayProxy(relay.url, close_after_ok) as proxy:
        t0 = time.perf_counter()
        with pytest.raises(dsrs.ProviderUnavailableError, match="closed the job's subscription"):
            await swarm(proxy.url).acall("x")
        assert time.perf_counter() - t0 < 2


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("rate-limited: slow down", dsrs.RateLimitError),
        ("blocked: you are banned", dsrs.InvalidRequestError),
        ("error: could not connect to the database", dsrs.ProviderUnavailableError),
    ],
)
async def test_relay_refusals_are_typed(relay: LoopbackRelay, reason: str, error: type[dsrs.LMError]) -> None:
    def refuse(msg: list[Any]) -> list[Any]:
        return ["OK", msg[1], False, reason] if msg[0] == "OK" else msg

    async with RelayProxy(relay.url, refuse) as proxy:
        with pytest.raises(error, match="no relay accepted the job request") as info:
            await swarm(proxy.url).acall("x")
    assert reason in str(info.value)
