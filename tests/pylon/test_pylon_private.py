"""Encrypted (private) jobs and streamed partial results, over the real relay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

import dsrs
from dsrs_pylon import PylonLM, encryption
from dsrs_pylon.dvm import DvmService
from dsrs_pylon.event import first_tag, sign_event
from dsrs_pylon.keys import Keys
from dsrs_pylon.swarm import JOB_KIND, RESULT_KIND, SwarmSettings, _Job, encrypt_job_tags
from dsrs_pylon.testing import LedgerAccount, LedgerWalletPlugin, LoopbackRelay

SECRET = "xyzzy the private prompt 4711"


async def stored_events(relay: LoopbackRelay) -> list[dict[str, Any]]:
    """Everything the relay stored, read back with a plain REQ."""
    events = []
    async with websockets.connect(relay.url) as ws:
        await ws.send(json.dumps(["REQ", "all", {"limit": 10_000}]))
        while True:
            msg = json.loads(await ws.recv())
            if msg[0] == "EOSE":
                return events
            events.append(msg[2])


def swarm(url: str, target: str) -> PylonLM:
    return PylonLM.new_swarm(url).with_timeout(10).with_options(feedback_timeout=5).with_targets(target)


@pytest.fixture
async def nip04_dvm(relay: LoopbackRelay) -> AsyncIterator[DvmService]:
    async with DvmService(dsrs.LM("fake:echo"), [relay.url], encryption=("nip04",), name="legacy") as dvm:
        yield dvm


async def test_paid_private_job_leaves_no_prompt_on_the_relay(
    relay: LoopbackRelay, paid_dvm: DvmService, wallet: LedgerWalletPlugin
) -> None:
    lm = swarm(relay.url, paid_dvm.public_key).with_encryption(True).with_budget_msats(100).with_model("llama3")
    r = await lm.acall(SECRET)
    assert r.text == SECRET and r.usage.cost_msats == 21  # decrypted, verified, paid
    assert r.usage.detail["encryption"] == "nip44_v2"
    events = await stored_events(relay)
    kinds = {e["kind"] for e in events}
    assert {JOB_KIND, RESULT_KIND, 7000} <= kinds  # request, result and feedback are all stored
    assert not any(SECRET in json.dumps(e, ensure_ascii=False) for e in events)
    assert not any("xyzzy" in json.dumps(e) or "llama3" in json.dumps(e) for e in events)  # params too
    request = next(e for e in events if e["kind"] == JOB_KIND)
    assert ["encrypted"] in request["tags"] and ["p", paid_dvm.public_key] in request["tags"]
    assert not any(t[0] in ("i", "param", "bid") for t in request["tags"])
    result = next(e for e in events if e["kind"] == RESULT_KIND)
    assert ["encrypted"] in result["tags"] and not any(t[0] == "i" for t in result["tags"])


async def test_encryption_is_on_by_default_for_one_target_and_can_be_turned_off(
    relay: LoopbackRelay, free_dvm: DvmService
) -> None:
    r = await swarm(relay.url, free_dvm.public_key).acall(SECRET)
    assert r.text == SECRET and r.usage.detail["encryption"] == "nip44_v2"
    assert not any(SECRET in json.dumps(e) for e in await stored_events(relay))
    r = await swarm(relay.url, free_dvm.public_key).with_encryption(False).acall(SECRET)
    assert r.usage.detail["encryption"] is None
    assert any(["i", SECRET, "text"] in e["tags"] for e in await stored_events(relay))  # public on purpose


async def test_provider_announcing_only_nip04_gets_nip04(relay: LoopbackRelay, nip04_dvm: DvmService) -> None:
    r = await swarm(relay.url, nip04_dvm.public_key).acall(SECRET)
    assert r.text == SECRET and r.usage.detail["encryption"] == "nip04"
    events = await stored_events(relay)
    request = next(e for e in events if e["kind"] == JOB_KIND)
    assert "?iv=" in request["content"] and ["encrypted"] in request["tags"]
    assert not any(SECRET in json.dumps(e) for e in events)


async def test_a_dvm_refuses_a_scheme_it_does_not_speak(relay: LoopbackRelay, nip04_dvm: DvmService) -> None:
    lm = swarm(relay.url, nip04_dvm.public_key).with_encryption(True, "nip44_v2")
    with pytest.raises(dsrs.ProviderUnavailableError, match="accepted in nip04, not nip44_v2"):
        await lm.acall(SECRET)


async def test_encryption_needs_exactly_one_target(relay: LoopbackRelay) -> None:
    lm = PylonLM.new_swarm(relay.url).with_encryption(True)
    with pytest.raises(dsrs.InvalidRequestError, match="exactly one provider, got 0 targets"):
        await lm.acall("x")
    two = lm.with_targets(Keys.generate().public_key, Keys.generate().public_key)
    with pytest.raises(dsrs.InvalidRequestError, match="got 2 targets"):
        await two.acall("x")


def test_bad_encryption_options_name_the_value(relay: LoopbackRelay) -> None:
    lm = swarm(relay.url, Keys.generate().public_key)
    with pytest.raises(ValueError, match=r"scheme must be one of \['nip44_v2', 'nip04'\], got 'rot13'"):
        lm.with_encryption(True, "rot13")
    with pytest.raises(TypeError, match="enabled must be True, False or None, got 'yes'"):
        lm.with_encryption("yes")  # type: ignore[arg-type]
    with pytest.raises(dsrs.InvalidRequestError, match=r"option encryption must be one of .*'rot13'"):
        lm.with_options(encryption="rot13").call("x")
    with pytest.raises(dsrs.InvalidRequestError, match="option encrypt must be True or False, got 'yes'"):
        lm.with_options(encrypt="yes").call("x")


# --- partial results ---------------------------------------------------------------------------


async def test_partials_stream_as_deltas_and_the_result_is_verified_and_paid(
    relay: LoopbackRelay, provider_account: LedgerAccount, wallet: LedgerWalletPlugin
) -> None:
    words = "one two three four five six"
    async with DvmService(
        dsrs.LM("fake:echo"), [relay.url], price_msats=21, wallet=provider_account, partial_interval=0
    ) as dvm:
        stream = swarm(relay.url, dvm.public_key).with_budget_msats(100).astream(words)
        deltas = [d async for d in stream]
    response = stream.response
    assert response is not None and response.text == words and response.usage.cost_msats == 21
    assert "".join(deltas) == words
    assert len(deltas) >= 6  # one partial per streamed word, then whatever the result adds
    assert response.raw_usage is not None and "partial" in response.raw_usage["statuses"]


async def test_stream_without_partials_is_one_chunk(relay: LoopbackRelay) -> None:
    async with DvmService(dsrs.LM("fake:echo"), [relay.url], partials=False) as dvm:
        stream = swarm(relay.url, dvm.public_key).astream("a b c")
        deltas = [d async for d in stream]
    assert deltas == ["a b c"] and stream.response is not None and stream.response.text == "a b c"


async def test_private_partials_are_encrypted_too(relay: LoopbackRelay) -> None:
    async with DvmService(dsrs.LM("fake:echo"), [relay.url], partial_interval=0) as dvm:
        stream = swarm(relay.url, dvm.public_key).astream(SECRET)
        deltas = [d async for d in stream]
    assert "".join(deltas) == SECRET and len(deltas) > 1
    events = await stored_events(relay)
    partials = [e for e in events if e["kind"] == 7000 and first_tag(e, "status") == ["partial"]]
    assert partials and all(["encrypted"] in e["tags"] for e in partials)
    assert not any("xyzzy" in json.dumps(e) for e in events)


async def test_partials_are_put_in_order_and_repeats_dropped() -> None:
    keys = Keys.generate()
    got: list[str] = []
    request = {"id": "ab" * 32, "pubkey": keys.public_key}
    job = _Job(SwarmSettings(relays=(), keys=keys), request, 0, None, on_partial=got.append)

    def partial(offset: int, text: str, author: str = "p1") -> dict[str, Any]:
        return {"pubkey": author, "content": text, "tags": [["status", "partial"], ["offset", str(offset)]]}

    for offset, text in [(0, "a "), (4, "c"), (2, "b "), (2, "b "), (0, "a ")]:
        job._partial(partial(offset, text))
    job._partial(partial(5, "from someone else", author="p2"))
    assert got == ["a ", "b ", "c"] and job.outcome.partial == "a b c"


async def test_hostile_partial_and_usage_tags_never_raise() -> None:
    keys = Keys.generate()
    got: list[str] = []
    job = _Job(SwarmSettings(relays=(), keys=keys), {"id": "cd" * 32}, 0, None, on_partial=got.append)
    for offset in ["²", "9" * 5_000, "-1", " 0", str(10**12)]:
        job._partial({"pubkey": "p", "content": "x", "tags": [["offset", offset]]})
    assert got == [] and job.outcome.ignored_events == 5
    for n in range(300):  # far-ahead deltas are bounded
        job._partial({"pubkey": "p", "content": "y", "tags": [["offset", str(10 + n)]]})
    assert len(job._partial_ahead) == 256
    out = job._result({"pubkey": "p", "content": "r", "tags": [["usage", "²", "9" * 5_000]]}, "r")
    assert out.prompt_tokens is None and out.completion_tokens is None
    out = job._result({"pubkey": "p", "content": "r", "tags": [["usage", "3", str(10**12)]]}, "r")
    assert out.completion_tokens is None


async def test_the_announced_scheme_is_looked_up_once(relay: LoopbackRelay, nip04_dvm: DvmService) -> None:
    from .conftest import RelayProxy

    async with RelayProxy(relay.url) as proxy:
        lm = swarm(proxy.url, nip04_dvm.public_key)
        for prompt in ("one", "two", "three"):
            r = await lm.acall(prompt)
            assert r.text == prompt and r.usage.detail["encryption"] == "nip04"
    lookups = [f for f in proxy.sent("REQ") if any(31990 in flt.get("kinds", []) for flt in f[2:])]
    assert len(lookups) == 1 and len(proxy.sent("REQ")) == 4  # one lookup, then one REQ per job


@pytest.mark.parametrize(
    ("make_content", "reason"),
    [
        (lambda c, d: "AgAAAA" + "A" * 200, "cannot decrypt the request (nip44_v2)"),
        (lambda c, d: encryption.encrypt_to(c, d, '{"i": "not a list"}'), "not a JSON list of tags"),
        (lambda c, d: encryption.encrypt_to(c, d, "[[1, 2]]"), "not a JSON list of tags"),
        (lambda c, d: encryption.encrypt_to(c, d, "not json"), "cannot decrypt the request"),
        (lambda c, d: encryption.encrypt_to(Keys.generate(), d, "[]"), "cannot decrypt the request"),  # other key
    ],
)
async def test_dvm_answers_bad_encrypted_requests_with_an_error(
    relay: LoopbackRelay, free_dvm: DvmService, make_content: Any, reason: str
) -> None:
    customer = Keys.generate()
    content = make_content(customer, free_dvm.public_key)
    request = sign_event(customer, JOB_KIND, [["p", free_dvm.public_key], ["encrypted"]], content)
    async with websockets.connect(relay.url) as ws:
        await ws.send(json.dumps(["REQ", "fb", {"kinds": [7000], "#e": [request["id"]]}]))
        assert json.loads(await ws.recv())[0] == "EOSE"
        await ws.send(json.dumps(["EVENT", request]))
        assert json.loads(await ws.recv())[:3] == ["OK", request["id"], True]
        feedback = json.loads(await asyncio.wait_for(ws.recv(), 5))[2]
    status = first_tag(feedback, "status")
    assert status is not None and status[0] == "error" and reason in status[1]
    assert free_dvm.stats.errors == 1 and free_dvm.stats.completed == 0


async def test_over_long_private_content_goes_nip04_rather_than_in_clear(relay: LoopbackRelay) -> None:
    """NIP-44 stops at 65,535 bytes: longer requests and answers are NIP-04 encrypted, never public.

    (The loopback relay, like most, takes events up to 64 KiB, so this is checked below the relay.)
    """
    customer, provider = Keys.generate(), Keys.generate()
    long_text = "ünïcode " * 9_000  # ~90 KB of UTF-8
    tags = [["i", long_text, "text"], ["bid", "0"], ["nonce", "00", "0"]]
    public, content, scheme = encrypt_job_tags(customer, tags, provider.public_key, "nip44_v2")
    assert scheme == "nip04" and "?iv=" in content and ["encrypted"] in public
    assert json.loads(encryption.decrypt_from(provider, customer.public_key, content)) == tags[:2]
    with pytest.raises(dsrs.InvalidRequestError, match="NIP-44 encrypts at most 65535"):
        encrypt_job_tags(customer, tags, provider.public_key, "nip44_v2", forced=True)
    dvm = DvmService(dsrs.LM("fake:echo"), [relay.url], keys=provider)
    sealed = dvm._seal({"pubkey": customer.public_key}, long_text, "nip44_v2")
    assert "?iv=" in sealed and encryption.decrypt_from(customer, provider.public_key, sealed) == long_text
    short = dvm._seal({"pubkey": customer.public_key}, "short", "nip44_v2")
    assert encryption.scheme_of(short) == "nip44_v2"


async def test_a_forced_nip44_job_too_long_is_refused_before_publishing(relay: LoopbackRelay) -> None:
    lm = swarm(relay.url, Keys.generate().public_key).with_encryption(True, "nip44_v2")
    with pytest.raises(dsrs.InvalidRequestError, match=r"the encrypted request is \d+ bytes"):
        await lm.acall("x" * 70_000)
    assert not any(e["kind"] == JOB_KIND for e in await stored_events(relay))


async def test_long_partials_are_split_into_nip44_sized_pieces(relay: LoopbackRelay) -> None:
    customer, provider = Keys.generate(), Keys.generate()
    dvm = DvmService(dsrs.LM("fake:echo"), [relay.url], keys=provider)
    sent: list[tuple[str, list[list[str]]]] = []

    async def record(request: Any, status: str, extra: str = "", **kw: Any) -> None:
        sent.append((kw["content"], kw["tags"]))

    dvm.feedback = record  # type: ignore[method-assign]
    delta = "€" * 40_000  # 120,000 bytes of UTF-8: two NIP-44 payloads are not enough for one
    await dvm._partial({"pubkey": customer.public_key}, delta, 7, "nip44_v2")
    assert len(sent) == 3 and all(encryption.scheme_of(c) == "nip44_v2" for c, _ in sent)
    pieces = [encryption.decrypt_from(customer, provider.public_key, c) for c, _ in sent]
    assert "".join(pieces) == delta
    assert [t[0] for _, t in sent] == [["offset", "7"], ["offset", str(7 + 16_383)], ["offset", str(7 + 32_766)]]


class JunkPartialsDvm(DvmService):
    """Floods the job with partials that are out of bounds, far ahead or repeated, then answers."""

    async def _generate(self, lm: Any, messages: Any, request: Any, scheme: str | None) -> Any:
        for offset in ["²", "9" * 5_000, "-1", *(str(10_000 + n) for n in range(300))]:
            await self.feedback(request, "partial", content="junk", tags=[["offset", offset]])
        await self._partial(request, "real ", 0, scheme)
        await self._partial(request, "real ", 0, scheme)  # a repeat
        return await lm.acall(messages)


async def test_junk_partials_over_the_relay_stay_bounded_and_the_result_wins(relay: LoopbackRelay) -> None:
    async with JunkPartialsDvm(dsrs.LM("fake:echo"), [relay.url]) as dvm:
        stream = swarm(relay.url, dvm.public_key).with_encryption(False).astream("real answer")
        deltas = [d async for d in stream]
    assert stream.response is not None and stream.response.text == "real answer"
    assert deltas == ["real ", "answer"]  # the one in-order delta, then the rest of the verified result
