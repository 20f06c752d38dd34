"""The customer side of a NIP-90 text-generation job (kind 5050 → 7000 feedback → 6050 result).

Order of a job, each step with its own timeout inside the overall deadline:

1. connect to every relay (``connect_timeout``); none reachable → ``ProviderUnavailableError``;
2. subscribe to feedback and results that reference the job id, and wait until the subscription
   is live (EOSE) — *before* publishing, so no answer can be missed;
3. publish the signed request to every relay (``publish_timeout``); at least one must say OK;
4. follow feedback: ``payment-required`` → pay under the spend policy → ``processing`` →
   ``partial``/``success``/``error``; accept a 6050 result only if its id and signature verify,
   it references the job, and it comes from the provider that was paid (any provider when the
   job was free; only the targets when the job was targeted);
5. always CLOSE the subscription and the connections, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dsrs.errors import (
    BudgetExceededError,
    InvalidRequestError,
    LMError,
    LMTimeoutError,
    PaymentError,
    ProviderUnavailableError,
    RateLimitError,
)
from dsrs.plugins import PaymentContext
from dsrs.types import Message, Text
from dsrs_pylon import bolt11, encryption, nip44
from dsrs_pylon.budget import Budget
from dsrs_pylon.event import Event, first_tag, sign_event, tag_int, tag_values, verify_event
from dsrs_pylon.keys import Keys
from dsrs_pylon.payment import call_wallet, check_proof, invoices
from dsrs_pylon.relay import RelayPool, new_subscription_id

__all__ = [
    "DEFAULT_BID_MSATS",
    "FEEDBACK_KIND",
    "HANDLER_KIND",
    "JOB_KIND",
    "RESULT_KIND",
    "JobOutcome",
    "SwarmSettings",
    "build_job_tags",
    "discover_providers",
    "run_job",
]

log = logging.getLogger("dsrs_pylon.swarm")

JOB_KIND = 5050
RESULT_KIND = JOB_KIND + 1000
FEEDBACK_KIND = 7000
HANDLER_KIND = 31990
#: PaymentError codes after which a payment may or may not have gone out (the budget keeps it spent).
UNKNOWN_OUTCOME_CODES = frozenset({"timeout", "bad_response", "unknown"})
#: Most offered per job when a budget is set and no bid is given (the seed quotes ~10-100 msats/call).
DEFAULT_BID_MSATS = 1_000
#: Bounds on what a provider can make a client hold: streamed partial text, and deltas waiting for a gap.
MAX_PARTIAL_CHARS = 4_000_000
MAX_PARTIALS_AHEAD = 256
#: Token counts beyond this in a result's ``usage`` tag are not believed (and not reported).
MAX_REPORTED_TOKENS = 10**9


@dataclass(frozen=True)
class SwarmSettings:
    """How to run jobs: where, as whom, how much to pay, how long to wait."""

    relays: tuple[str, ...]
    keys: Keys
    budget: Budget | None = None
    bid_msats: int | None = None
    targets: tuple[str, ...] = ()
    timeout: float = 60.0
    connect_timeout: float = 5.0
    publish_timeout: float = 5.0
    feedback_timeout: float = 20.0
    payment_timeout: float = 30.0
    offer_wait: float = 2.0
    provider_name: str = "pylon"
    model_label: str = "swarm"
    #: Encrypt inputs and params to the (single) target (NIP-90 ``["encrypted"]`` requests).
    encrypt: bool = False
    #: Force ``"nip44_v2"`` or ``"nip04"``; by default NIP-44, NIP-04 only where the provider announces only that.
    encryption: str | None = None


@dataclass
class JobOutcome:
    """What a finished job produced and what it cost."""

    text: str
    job_id: str
    provider_pubkey: str
    paid_msats: int = 0
    fee_msats: int = 0
    bolt11: str | None = None
    preimage: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    relays_accepted: list[str] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)
    rejected_events: int = 0
    ignored_events: int = 0
    #: The partial text streamed so far (``status: partial`` feedback, in order).
    partial: str = ""
    #: ``"nip44_v2"``/``"nip04"`` when the request was encrypted to the provider, else ``None``.
    encryption: str | None = None
    #: False when the wallet's answer was malformed (a warning named the plugin; the job still waited).
    proof_valid: bool = True


def messages_to_inputs(messages: Sequence[Message]) -> list[list[str]]:
    """``i`` tags: one user prompt → ``["i", text, "text"]``; a conversation → one tag per message, marker = role."""
    for n, m in enumerate(messages):
        other = next((p for p in m.parts if not isinstance(p, Text)), None)
        if other is not None:
            raise InvalidRequestError(
                f"Pylon swarm jobs carry text only: messages[{n}] has a {type(other).__name__} part",
                provider="pylon",
            )
    if len(messages) == 1 and messages[0].role == "user":
        return [["i", messages[0].text, "text"]]
    return [["i", m.text, "text", "", m.role] for m in messages if m.text]


def build_job_tags(
    messages: Sequence[Message],
    *,
    model: str | None,
    max_tokens: int | None,
    temperature: float | None,
    bid_msats: int,
    relays: Sequence[str],
    targets: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
) -> list[list[str]]:
    tags = messages_to_inputs(messages)
    if model:
        tags.append(["param", "model", model])
    if max_tokens is not None:
        tags.append(["param", "max_tokens", str(max_tokens)])
    if temperature is not None:
        tags.append(["param", "temperature", f"{temperature:g}"])
    for key, value in (params or {}).items():
        tags.append(["param", str(key), str(value)])
    tags.append(["output", "text/plain"])
    tags.append(["bid", str(bid_msats)])
    tags.append(["relays", *relays])
    tags.extend(["p", t] for t in targets)
    # NIP-01 ids hash the content and created_at (whole seconds): without a nonce the same prompt sent
    # twice in a second would be the same job. A NIP-13 nonce tag claiming difficulty 0 is valid PoW.
    tags.append(["nonce", secrets.token_hex(16), "0"])
    return tags


def encrypt_job_tags(
    keys: Keys, tags: list[list[str]], provider: str, scheme: str, *, forced: bool = False
) -> tuple[list[list[str]], str, str]:
    """NIP-90 encrypted request: every tag but ``p``/``nonce`` moves into the content, encrypted to ``provider``.

    Returns ``(public tags, content, scheme used)``. NIP-44 encrypts at most 65,535 bytes: a longer
    request goes NIP-04 encrypted unless NIP-44 was asked for explicitly (then it is refused).
    """
    private = json.dumps([t for t in tags if t[0] not in ("p", "nonce")], ensure_ascii=False)
    public = [["p", provider], ["encrypted"], *(t for t in tags if t[0] == "nonce")]
    size = len(private.encode("utf-8"))
    if scheme == encryption.NIP44 and size > nip44.MAX_PLAINTEXT_BYTES:
        if forced:
            raise InvalidRequestError(
                f"the encrypted request is {size} bytes; NIP-44 encrypts at most {nip44.MAX_PLAINTEXT_BYTES} "
                "(shorten the prompt, or allow NIP-04: .with_encryption(True))",
                provider="pylon",
            )
        scheme = encryption.NIP04
    return public, encryption.encrypt_to(keys, provider, private, scheme), scheme


def _short(pubkey: str) -> str:
    return pubkey[:12] + "…"


class _Job:
    """State of one job while following its events."""

    def __init__(
        self,
        settings: SwarmSettings,
        request: Event,
        bid: int,
        model: str | None,
        *,
        scheme: str | None = None,
        on_partial: Callable[[str], None] | None = None,
    ) -> None:
        self.s = settings
        self.request = request
        self.job_id: str = request["id"]
        self.bid = bid
        self.model = model
        self.scheme = scheme
        self.on_partial = on_partial
        self.seen: set[str] = set()
        self.paid_to: str | None = None
        self.payment_attempted = False
        self.outcome = JobOutcome(text="", job_id=self.job_id, provider_pubkey="", encryption=scheme)
        self.pending_error: LMError | None = None
        self.engaged = False
        self._partial_author: str | None = None
        self._partial_ahead: dict[int, str] = {}  # offset -> delta that arrived before its predecessor

    def _err(self, cls: type[LMError], message: str, **kw: Any) -> LMError:
        return cls(message, provider=self.s.provider_name, model=self.s.model_label, **kw)

    def _acceptable_author(self, author: str) -> bool:
        if self.s.targets and author not in self.s.targets:
            return False
        return self.paid_to is None or author == self.paid_to

    def _content(self, event: Event) -> str | None:
        """The event's content, decrypted when it is marked ``encrypted``; ``None`` when that fails."""
        if first_tag(event, "encrypted") is None:
            return str(event["content"])
        try:
            return encryption.decrypt_from(self.s.keys, event["pubkey"], event["content"])
        except encryption.EncryptionError as exc:
            self.outcome.rejected_events += 1
            log.warning("job %s: dropped an encrypted event that does not decrypt: %s", self.job_id[:12], exc)
            return None

    async def handle(self, event: Event) -> JobOutcome | None:
        """Process one incoming event; return the outcome when the job is done."""
        eid = event.get("id")
        if not isinstance(eid, str) or eid in self.seen:
            return None
        self.seen.add(eid)
        if not verify_event(event):
            self.outcome.rejected_events += 1
            log.warning("job %s: rejected an event with a bad id or signature", self.job_id[:12])
            return None
        if not any(t and t[0] == self.job_id for t in tag_values(event, "e")):
            self.outcome.rejected_events += 1
            return None
        author = event["pubkey"]
        if not self._acceptable_author(author):
            self.outcome.ignored_events += 1
            return None
        if event["kind"] == RESULT_KIND:
            content = self._content(event)
            return None if content is None else self._result(event, content)
        if event["kind"] == FEEDBACK_KIND:
            await self._feedback(event)
        return None

    def _result(self, event: Event, content: str) -> JobOutcome:
        out = self.outcome
        out.text = content
        out.provider_pubkey = event["pubkey"]
        usage = first_tag(event, "usage") or []
        counts = [tag_int(v, MAX_REPORTED_TOKENS) for v in usage[:2]]
        if len(counts) == 2 and counts[0] is not None and counts[1] is not None:
            out.prompt_tokens, out.completion_tokens = counts[0], counts[1]
        return out

    def _partial(self, event: Event) -> None:
        """Append a partial result in order. Our DVM tags each delta with its ``offset``; others are appended as they come."""
        author = event["pubkey"]
        if self._partial_author not in (None, author):
            self.outcome.ignored_events += 1  # one stream per job: the first provider that streams
            return
        content = self._content(event)
        if not content:
            return
        self._partial_author = author
        offset_tag = first_tag(event, "offset")
        offset = tag_int(offset_tag[0], MAX_PARTIAL_CHARS) if offset_tag else len(self.outcome.partial)
        if offset is None or len(self.outcome.partial) + len(content) > MAX_PARTIAL_CHARS:
            self.outcome.ignored_events += 1  # out of bounds: the verified result still ends the job
            return
        if offset > len(self.outcome.partial) and len(self._partial_ahead) >= MAX_PARTIALS_AHEAD:
            self.outcome.ignored_events += 1
            return
        self._partial_ahead[offset] = content
        while len(self.outcome.partial) in self._partial_ahead:
            delta = self._partial_ahead.pop(len(self.outcome.partial))
            self.outcome.partial += delta
            if self.on_partial is not None:
                self.on_partial(delta)
        for stale in [o for o in self._partial_ahead if o < len(self.outcome.partial)]:
            del self._partial_ahead[stale]  # a repeat of text already streamed

    async def _feedback(self, event: Event) -> None:
        status_tag = first_tag(event, "status") or []
        status = status_tag[0] if status_tag else ""
        extra = status_tag[1] if len(status_tag) > 1 else ""
        author = event["pubkey"]
        self.outcome.statuses.append((status, author))
        if status == "payment-required":
            await self._payment_required(event, author)
        elif status in ("processing", "success"):
            self.engaged = True
        elif status == "partial":
            self.engaged = True
            self._partial(event)
        elif status == "error":
            err = self._err(
                ProviderUnavailableError,
                f"provider {_short(author)} reported an error for job {self.job_id[:12]}: {extra or event['content'][:200]}"
                + (f" (after {self.outcome.paid_msats} msats were paid)" if self.outcome.paid_msats else ""),
                code="nip90_error",
            )
            if self.paid_to == author or self.s.targets:
                raise err
            self.pending_error = err

    def _refuse(self, err: LMError) -> None:
        if self.s.targets and len(self.s.targets) == 1:
            raise err
        self.pending_error = err

    def _invoice_problem(self, invoice: bolt11.Invoice, tag_msats: int) -> str | None:
        if invoice.amount_msats is None:
            return "the invoice has no amount"
        if invoice.amount_msats != tag_msats:
            return f"the invoice amount ({invoice.amount_msats} msats) differs from the amount tag ({tag_msats} msats)"
        if invoice.amount_msats > self.bid:
            return f"the invoice amount ({invoice.amount_msats} msats) is above our bid ({self.bid} msats)"
        if invoice.is_expired():
            return "the invoice has expired"
        return None

    async def _payment_required(self, event: Event, author: str) -> None:
        if self.paid_to is not None or self.payment_attempted:
            # Never twice for one job: a second invoice (from anyone) is ignored.
            self.outcome.ignored_events += 1
            return
        amount = first_tag(event, "amount")
        if not amount or len(amount) < 2 or not amount[1]:
            self._refuse(
                self._err(PaymentError, f"provider {_short(author)} asked for payment without a bolt11 invoice")
            )
            return
        try:
            tag_msats = int(amount[0])
        except ValueError:
            self._refuse(self._err(PaymentError, f"provider {_short(author)} sent a non-numeric amount tag"))
            return
        try:
            invoice = bolt11.decode(amount[1])
        except bolt11.Bolt11Error as exc:
            self._refuse(self._err(PaymentError, f"refused invoice from {_short(author)}: {exc}"))
            return
        reason = self._invoice_problem(invoice, tag_msats)
        if reason is not None:
            self._refuse(
                self._err(PaymentError, f"refused to pay provider {_short(author)}: {reason}; nothing was paid")
            )
            return
        assert invoice.amount_msats is not None
        price = invoice.amount_msats
        if self.s.budget is None:
            self._refuse(
                self._err(
                    BudgetExceededError,
                    f"provider {_short(author)} asks {price} msats but no budget is set "
                    "(use .with_budget_msats(n)); nothing was paid",
                    code="no_budget",
                )
            )
            return
        holder = invoices().claim(invoice.payment_hash, self.job_id)
        if holder == self.job_id:
            # This very job is already paying (or paid) this invoice, e.g. the request reached us twice:
            # do not pay again, wait for the result of the payment in flight.
            self.paid_to, self.payment_attempted, self.engaged = author, True, True
            self.outcome.ignored_events += 1
            return
        if holder is not None:
            self._refuse(
                self._err(
                    PaymentError,
                    f"provider {_short(author)} sent an invoice this process already paid for job {holder[:12]}; "
                    "an invoice is paid at most once, nothing was paid",
                    code="invoice_reused",
                )
            )
            return
        try:
            reservation = self.s.budget.reserve(price, provider=self.s.provider_name, model=self.s.model_label)
        except BudgetExceededError as exc:
            invoices().release(invoice.payment_hash, self.job_id)
            self._refuse(exc)
            return
        self.payment_attempted = True
        context = PaymentContext(
            provider=self.s.provider_name,
            job_id=self.job_id,
            counterparty=author,
            bid_msats=self.bid,
            budget_remaining_msats=self.s.budget.remaining_msats,
            extra={"payment_hash": invoice.payment_hash, "relays": list(self.s.relays)},
        )
        try:
            answer, plugin = await asyncio.wait_for(
                asyncio.to_thread(call_wallet, invoice.bolt11, price, context), self.s.payment_timeout
            )
        except asyncio.TimeoutError:
            reservation.commit()  # outcome unknown: count it as spent, never overspend (the claim stays)
            raise self._err(
                PaymentError, f"the wallet did not answer within {self.s.payment_timeout:g}s; payment outcome unknown"
            ) from None
        except PaymentError as exc:
            if exc.code in UNKNOWN_OUTCOME_CODES:
                reservation.commit()  # the wallet may have paid: count it, never overspend
            else:
                reservation.release()
                invoices().release(invoice.payment_hash, self.job_id)
            exc.provider = exc.provider or self.s.provider_name
            raise
        except Exception as exc:
            reservation.commit()
            raise self._err(PaymentError, f"the wallet failed ({type(exc).__name__}: {exc}); outcome unknown") from exc
        if answer is None:
            reservation.release()
            invoices().release(invoice.payment_hash, self.job_id)
            raise self._err(
                PaymentError,
                "no wallet to pay the invoice: set PYLON_NWC_URI (Nostr Wallet Connect) "
                "or install a plugin implementing dsrs_pay_invoice",
                code="no_wallet",
            )
        proof = check_proof(
            answer,
            plugin=plugin,
            payment_hash=invoice.payment_hash,
            fee_cap_msats=max(0, self.s.budget.remaining_msats),
        )
        # The wallet was called and answered: the money has (most likely) left. Count it and wait for
        # the result even when the proof is malformed (a warning named the plugin).
        reservation.commit(price + proof.fee_msats)
        self.paid_to = author
        self.engaged = True
        out = self.outcome
        out.paid_msats, out.fee_msats, out.bolt11, out.preimage = price, proof.fee_msats, invoice.bolt11, proof.preimage
        out.proof_valid = proof.valid


def _publish_failure(
    settings: SwarmSettings, acks: Mapping[str, tuple[bool, str]], failures: Mapping[str, str]
) -> LMError:
    reasons = "; ".join(f"{u}: {m}" for u, (_, m) in acks.items()) or "; ".join(
        f"{u}: {m}" for u, m in failures.items()
    )
    cls: type[LMError] = ProviderUnavailableError
    if acks and all(m.startswith("rate-limited") for _, m in acks.values()):
        cls = RateLimitError
    elif acks and all(m.startswith(("invalid", "blocked", "restricted", "pow")) for _, m in acks.values()):
        cls = InvalidRequestError
    return cls(
        f"no relay accepted the job request ({reasons})",
        provider=settings.provider_name,
        model=settings.model_label,
        code="relay_rejected",
    )


async def run_job(
    settings: SwarmSettings,
    messages: Sequence[Message],
    *,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    params: Mapping[str, Any] | None = None,
    on_partial: Callable[[str], None] | None = None,
) -> JobOutcome:
    """Run one text-generation job on the swarm and return its outcome (or raise a typed error).

    ``on_partial(delta)`` is called, in order, with the text of each ``partial`` feedback of the
    provider that streams; the outcome's ``text`` is always the verified 6050 result.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.timeout
    budget = settings.budget
    if budget is None:
        bid = settings.bid_msats or 0  # without a budget nothing is ever paid
    else:
        wanted = settings.bid_msats if settings.bid_msats is not None else DEFAULT_BID_MSATS
        bid = max(0, min(wanted, budget.remaining_msats))
    tags = build_job_tags(
        messages,
        model=model,
        max_tokens=max_tokens,
        temperature=temperature,
        bid_msats=bid,
        relays=settings.relays,
        targets=settings.targets,
        params=params,
    )
    if settings.encrypt and len(settings.targets) != 1:
        raise InvalidRequestError(
            f"an encrypted job goes to exactly one provider, got {len(settings.targets)} targets: "
            "use .with_targets(pubkey), or .with_encryption(False)",
            provider=settings.provider_name,
            model=settings.model_label,
        )
    queue: asyncio.Queue[Event] = asyncio.Queue()
    announcements: list[Event] = []
    info_sub = new_subscription_id("nip89")

    def sink(_url: str, sub: str, event: Event) -> None:
        (announcements.append if sub == info_sub else queue.put_nowait)(event)

    pool = RelayPool(settings.relays, settings.keys, sink)
    sub_id = new_subscription_id("job")

    def remaining() -> float:
        return deadline - loop.time()

    try:
        await pool.connect(max(0.01, min(settings.connect_timeout, remaining())))
        if not pool.connections:
            raise ProviderUnavailableError(
                "no relay reachable: " + "; ".join(f"{u}: {m}" for u, m in pool.failures.items()),
                provider=settings.provider_name,
                model=settings.model_label,
                code="relay_unreachable",
            )
        scheme: str | None = None
        content = ""
        if settings.encrypt:
            provider = settings.targets[0]
            scheme = settings.encryption or _known_scheme(provider)
            if scheme is None:
                flt = {"kinds": [HANDLER_KIND], "authors": [provider], "#k": [str(JOB_KIND)]}
                await pool.subscribe(info_sub, [flt], wait_eose=max(0.01, min(settings.publish_timeout, remaining())))
                await pool.unsubscribe(info_sub)
                scheme = _scheme_for(settings, provider, announcements)
                _remember_scheme(provider, scheme)
            tags, content, scheme = encrypt_job_tags(
                settings.keys, tags, provider, scheme, forced=settings.encryption is not None
            )
        request = sign_event(settings.keys, JOB_KIND, tags, content)
        job = _Job(settings, request, bid, model, scheme=scheme, on_partial=on_partial)
        live = await pool.subscribe(
            sub_id,
            [{"kinds": [RESULT_KIND, FEEDBACK_KIND], "#e": [job.job_id]}],
            wait_eose=max(0.01, min(settings.publish_timeout, remaining())),
        )
        if live == 0:
            raise ProviderUnavailableError(
                "no relay accepted the result subscription: "
                + "; ".join(f"{c.url}: {c.closed_subscriptions.get(sub_id, 'no EOSE')}" for c in pool.connections),
                provider=settings.provider_name,
                model=settings.model_label,
                code="relay_subscription",
            )
        acks = await pool.publish(request, max(0.01, min(settings.publish_timeout, remaining())))
        job.outcome.relays_accepted = [u for u, (ok, _) in acks.items() if ok]
        if not job.outcome.relays_accepted:
            raise _publish_failure(settings, acks, pool.failures)
        phase_deadline = loop.time() + settings.feedback_timeout
        lost = loop.create_task(_all_gone(pool, sub_id))
        pending: LMError | None = None
        try:
            while True:
                now = loop.time()
                if job.engaged:
                    phase_deadline = deadline
                if job.pending_error is not None:
                    # An offer we refused (or an error from a provider we did not engage): give the
                    # other providers `offer_wait` seconds, then report why nothing was accepted.
                    pending, job.pending_error = job.pending_error, None
                    phase_deadline = min(phase_deadline, now + settings.offer_wait)
                wait = min(deadline, phase_deadline) - now
                if wait <= 0:
                    raise _timeout(settings, job, pending, deadline <= phase_deadline)
                getter = loop.create_task(queue.get())
                done, _ = await asyncio.wait({getter, lost}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    if lost in done:
                        closed = lost.result()
                        raise ProviderUnavailableError(
                            (
                                f"every relay closed the job's subscription ({closed})"
                                if closed
                                else "lost the connection to every relay while waiting for the result"
                            )
                            + (f" (after paying {job.outcome.paid_msats} msats)" if job.outcome.paid_msats else ""),
                            provider=settings.provider_name,
                            model=settings.model_label,
                            code="relay_lost",
                        )
                    continue
                outcome = await job.handle(getter.result())
                if outcome is not None:
                    return outcome
        except LMError as exc:
            if job.payment_attempted:
                # Money may have left for this job: running it again would pay again. Not retryable.
                exc.retryable = False
            raise
        finally:
            lost.cancel()
    finally:
        await pool.close()


#: How long a provider's announced encryption is remembered (saves a relay round trip per private job).
SCHEME_TTL_S = 300.0
_SCHEMES_SEEN: dict[str, tuple[float, str]] = {}  # provider -> (expires, monotonic clock; scheme)


def _known_scheme(provider: str) -> str | None:
    seen = _SCHEMES_SEEN.get(provider)
    return seen[1] if seen is not None and seen[0] >= time.monotonic() else None


def _remember_scheme(provider: str, scheme: str) -> None:
    now = time.monotonic()
    if len(_SCHEMES_SEEN) >= 10_000:  # bounded: forget the expired ones, or all of them
        expired = [p for p, (until, _) in _SCHEMES_SEEN.items() if until < now]
        for p in expired or list(_SCHEMES_SEEN):
            del _SCHEMES_SEEN[p]
    _SCHEMES_SEEN[provider] = (now + SCHEME_TTL_S, scheme)


def _scheme_for(settings: SwarmSettings, provider: str, announcements: Sequence[Event]) -> str:
    """NIP-44 v2, unless the provider's newest NIP-89 announcement offers only NIP-04."""
    mine = [e for e in announcements if e.get("pubkey") == provider and verify_event(e)]
    if not mine:
        return encryption.NIP44
    tag = first_tag(max(mine, key=lambda e: int(e["created_at"])), "encryption")
    offered = encryption.parse_tag(tag[0] if tag else None)
    if not offered:
        return encryption.NIP44
    chosen = encryption.choose(offered)
    if chosen is None:
        raise InvalidRequestError(
            f"provider {_short(provider)} announces encryption {list(offered)}; "
            f"this client speaks {list(encryption.SCHEMES)}",
            provider=settings.provider_name,
            model=settings.model_label,
        )
    return chosen


def _timeout(settings: SwarmSettings, job: _Job, pending: LMError | None, overall: bool) -> LMError:
    if pending is not None and job.paid_to is None and not job.engaged:
        return pending
    if overall or job.engaged:
        what = f"no result for job {job.job_id[:12]} within {settings.timeout:g}s"
        if job.outcome.paid_msats:
            what += f" (after paying {job.outcome.paid_msats} msats to {_short(job.paid_to or '')})"
    else:
        what = f"no provider answered job {job.job_id[:12]} within {settings.feedback_timeout:g}s"
    return LMTimeoutError(what, provider=settings.provider_name, model=settings.model_label, code="swarm_timeout")


async def _all_gone(pool: RelayPool, sub_id: str) -> str:
    """Return (with the reasons) once no relay can deliver the job's events any more."""
    while any(c.serves(sub_id) for c in pool.connections):
        for c in pool.connections:
            c.changed.clear()
        waits = [asyncio.ensure_future(c.changed.wait()) for c in pool.connections if c.serves(sub_id)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
    closed = [
        f"{c.url}: {c.closed_subscriptions[sub_id]}" for c in pool.connections if sub_id in c.closed_subscriptions
    ]
    return "; ".join(closed)


@dataclass(frozen=True)
class HandlerInfo:
    """A provider announced through NIP-89 (kind 31990 with ``k`` = 5050)."""

    pubkey: str
    name: str = ""
    about: str = ""
    created_at: int = 0
    kinds: tuple[str, ...] = ()


async def discover_providers(
    relays: Sequence[str], keys: Keys | None = None, *, timeout: float = 5.0, kind: int = JOB_KIND
) -> list[HandlerInfo]:
    """Providers that announced support for ``kind`` (NIP-89), newest first, signatures verified."""
    found: dict[str, HandlerInfo] = {}

    def sink(_url: str, _sub: str, event: Event) -> None:
        if event.get("kind") != HANDLER_KIND or not verify_event(event):
            return
        kinds = tuple(t[0] for t in tag_values(event, "k") if t)
        if str(kind) not in kinds:
            return
        try:
            meta = json.loads(event["content"]) if event["content"] else {}
        except ValueError:
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        info = HandlerInfo(
            event["pubkey"], str(meta.get("name", "")), str(meta.get("about", "")), event["created_at"], kinds
        )
        old = found.get(info.pubkey)
        if old is None or old.created_at < info.created_at:
            found[info.pubkey] = info

    pool = RelayPool(relays, keys or Keys.generate(), sink)
    sub = new_subscription_id("nip89")
    try:
        await pool.connect(timeout)
        if not pool.connections:
            raise ProviderUnavailableError(
                "no relay reachable for discovery: " + "; ".join(f"{u}: {m}" for u, m in pool.failures.items()),
                provider="pylon",
            )
        await pool.subscribe(sub, [{"kinds": [HANDLER_KIND], "#k": [str(kind)], "limit": 100}], wait_eose=timeout)
    finally:
        with contextlib.suppress(Exception):
            await pool.close()
    return sorted(found.values(), key=lambda h: -h.created_at)
