"""A NIP-90 text-generation service provider (DVM) that sells inference from any dsrs LM.

``dsrs-pylon serve --model ollama:llama3 --price-msats 50 --relay wss://...`` runs one. For each
kind-5050 request it: verifies the signature; ignores duplicates, stale requests and jobs targeted at
someone else; refuses bids below its price (``error`` feedback); invoices through a wallet
(``payment-required`` with ``["amount", msats, bolt11]``) and waits until the invoice is settled;
publishes ``processing``; runs the LM; publishes the 6050 result (content, ``request``, ``e``, ``p``,
``i``, ``amount``, ``usage``) and ``success`` — or ``error`` when anything fails.

Encrypted requests (NIP-90: ``["encrypted"]`` plus ``["p", <this DVM>]``, the input and param tags
encrypted in the content) are decrypted with NIP-44 v2 or NIP-04 (whichever the request used, if
the service speaks it); their partial results and the result are encrypted the same way, and the
result carries no ``i`` tags, so relays see no prompt and no answer. While the LM streams, the text
is published as ``partial`` feedback: each event holds the new text (a delta) and an ``offset`` tag
(the characters before it), so a client can put deltas in order and drop repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dsrs import LM
from dsrs.errors import LMError
from dsrs.types import LMResponse, Message
from dsrs_pylon import bolt11, encryption, nip44
from dsrs_pylon.event import Event, first_tag, sign_event, tag_int, tag_values, verify_event
from dsrs_pylon.keys import Keys
from dsrs_pylon.relay import RelayPool, new_subscription_id
from dsrs_pylon.swarm import FEEDBACK_KIND, HANDLER_KIND, JOB_KIND, RESULT_KIND

__all__ = ["DvmService", "DvmStats", "InvoiceWallet", "request_messages"]

log = logging.getLogger("dsrs_pylon.dvm")
_SCHEMES = encryption.SCHEMES
# Characters per partial event: at most 4 UTF-8 bytes each, so a piece always fits one NIP-44 payload.
_PARTIAL_CHARS = nip44.MAX_PLAINTEXT_BYTES // 4
_ROLES = ("system", "developer", "user", "assistant")


class InvoiceWallet(Protocol):
    """What a DVM needs from a wallet: issue invoices and learn when they are paid."""

    async def make_invoice(self, amount_msats: int, description: str = "", expiry: int = 600) -> str: ...

    async def wait_paid(self, payment_hash: str, timeout: float) -> bool: ...


@dataclass
class DvmStats:
    requests: int = 0
    completed: int = 0
    errors: int = 0
    ignored: int = 0
    earned_msats: int = 0
    publish_failures: list[str] = field(default_factory=list)
    #: Seconds from receiving each request to publishing its result (the DVM's own processing time).
    processing_s: dict[str, float] = field(default_factory=dict)
    job_ids: list[str] = field(default_factory=list)


def request_messages(request: Event) -> list[Message]:
    """The chat messages of a 5050 request: one per ``text`` input, its marker as the role."""
    messages = []
    for values in tag_values(request, "i"):
        if len(values) >= 2 and values[1] == "text":
            marker = values[3] if len(values) > 3 else ""
            messages.append(Message(marker if marker in _ROLES else "user", values[0]))  # type: ignore[arg-type]
    return messages


class DvmService:
    """A running DVM. ``async with DvmService(lm, relays, ...) as dvm: ...`` or ``await dvm.run()``."""

    def __init__(
        self,
        lm: LM,
        relays: Sequence[str],
        *,
        keys: Keys | None = None,
        price_msats: int = 0,
        wallet: InvoiceWallet | None = None,
        payment_timeout: float = 60.0,
        max_age: float = 600.0,
        name: str = "dsrs DVM",
        about: str = "Text generation (NIP-90 kind 5050) served by dsrs",
        announce: bool = True,
        encryption: Sequence[str] = ("nip44_v2", "nip04"),
        partials: bool = True,
        partial_interval: float = 0.25,
    ) -> None:
        """``encryption``: the schemes accepted for encrypted requests (announced in the NIP-89 event);
        ``partials``: stream the LM's text as ``partial`` feedback, at most one event per ``partial_interval`` s."""
        if price_msats > 0 and wallet is None:
            raise ValueError("a priced DVM needs a wallet to issue invoices (e.g. NwcClient(PYLON_NWC_URI))")
        self.lm = lm
        self.relays = tuple(relays)
        self.keys = keys or Keys.generate()
        self.price_msats = price_msats
        self.wallet = wallet
        self.payment_timeout = payment_timeout
        self.max_age = max_age
        self.name, self.about, self.announce = name, about, announce
        unknown = [e for e in encryption if e not in _SCHEMES]
        if unknown:
            raise ValueError(f"encryption schemes must be among {list(_SCHEMES)}, got {unknown!r}")
        self.encryption = tuple(encryption)
        self.partials = partials
        self.partial_interval = partial_interval
        self.stats = DvmStats()
        self._pool: RelayPool | None = None
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._seen: dict[str, float] = {}  # request id -> created_at, pruned past max_age
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._sub = new_subscription_id("dvm")

    @property
    def public_key(self) -> str:
        return self.keys.public_key

    def __repr__(self) -> str:
        return f"DvmService(npub={self.keys.npub!r}, model={self.lm.model!r}, price_msats={self.price_msats})"

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        pool = RelayPool(self.relays, self.keys, lambda _u, _s, ev: self._queue.put_nowait(ev))
        await pool.connect(5.0)
        if not pool.connections:
            raise ConnectionError("DVM: no relay reachable: " + "; ".join(pool.failures.values()))
        self._pool = pool
        since = int(time.time()) - 5
        await pool.subscribe(self._sub, [{"kinds": [JOB_KIND], "since": since}], wait_eose=5.0)
        if self.announce:
            info = json.dumps({"name": self.name, "about": self.about, "price_msats": self.price_msats})
            tags = [["d", "dsrs-5050"], ["k", str(JOB_KIND)]]
            if self.encryption:
                tags.append(["encryption", " ".join(self.encryption)])
            await self._publish(sign_event(self.keys, HANDLER_KIND, tags, info))
        self._runner = asyncio.get_running_loop().create_task(self._loop(), name="dvm-loop")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(BaseException):
                await self._runner
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> DvmService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self) -> None:
        """Serve until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _loop(self) -> None:
        while True:
            event = await self._queue.get()
            task = asyncio.get_running_loop().create_task(self._handle(event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- publishing -------------------------------------------------------------------------

    async def _publish(self, event: Event) -> bool:
        assert self._pool is not None
        for attempt in range(4):
            acks = await self._pool.publish(event, 5.0)
            if any(ok for ok, _ in acks.values()):
                return True
            if attempt == 3 or not all(m.startswith("rate-limited") for _, m in acks.values()):
                break
            await asyncio.sleep(0.25 * 2**attempt)  # the relay asked us to slow down
        reasons = "; ".join(f"{u}: {m}" for u, (_, m) in acks.items())
        self.stats.publish_failures.append(reasons)
        log.warning("DVM: no relay accepted kind %s event: %s", event["kind"], reasons)
        return False

    async def feedback(
        self,
        request: Event,
        status: str,
        extra: str = "",
        *,
        amount: tuple[int, str] | None = None,
        content: str = "",
        tags: Sequence[list[str]] = (),
    ) -> None:
        all_tags = [["status", status, extra] if extra else ["status", status]]
        if amount is not None:
            all_tags.append(["amount", str(amount[0]), amount[1]])
        all_tags += [["e", request["id"], self.relays[0]], ["p", request["pubkey"]], *tags]
        await self._publish(sign_event(self.keys, FEEDBACK_KIND, all_tags, content))

    # --- policy hooks (override in subclasses) ----------------------------------------------

    def quote(self, request: Event) -> int:
        """The price of this job in msats."""
        return self.price_msats

    async def make_invoice(self, request: Event, price: int) -> tuple[int, str]:
        """``(amount tag msats, bolt11)`` for this job."""
        assert self.wallet is not None
        invoice = await self.wallet.make_invoice(price, f"dsrs DVM job {request['id'][:16]}", 600)
        return price, invoice

    # --- jobs -------------------------------------------------------------------------------

    def _accept(self, request: Event) -> bool:
        if request.get("kind") != JOB_KIND or request.get("id") in self._seen:
            return False
        if not verify_event(request):
            return False
        now = time.time()
        if not -600 <= now - request["created_at"] <= self.max_age:
            return False  # stale, or dated in the future (and so never needs remembering)
        if len(self._seen) >= 10_000:
            self._seen = {k: t for k, t in self._seen.items() if now - t <= self.max_age}
        self._seen[request["id"]] = request["created_at"]
        targets = [t[0] for t in tag_values(request, "p") if t]
        return not targets or self.keys.public_key in targets

    async def _handle(self, request: Event) -> None:
        t0 = time.perf_counter()
        if not self._accept(request):
            self.stats.ignored += 1
            return
        self.stats.requests += 1
        try:
            await self._serve(request, t0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let one job kill the service
            self.stats.errors += 1
            log.warning("DVM job %s failed: %s", request["id"][:12], exc)
            with contextlib.suppress(Exception):
                await self.feedback(request, "error", f"internal error: {type(exc).__name__}")

    def _open(self, request: Event) -> tuple[Event, str | None] | str:
        """``(request with its private tags, scheme)``, or the reason an encrypted request is refused."""
        if first_tag(request, "encrypted") is None:
            return request, None
        scheme = encryption.scheme_of(request["content"])
        if scheme not in self.encryption:
            return f"encrypted requests are accepted in {' '.join(self.encryption) or 'no scheme'}, not {scheme}"
        try:
            private = json.loads(encryption.decrypt_from(self.keys, request["pubkey"], request["content"], scheme))
        except ValueError:
            return f"cannot decrypt the request ({scheme})"
        if not isinstance(private, list) or not all(
            isinstance(t, list) and t and all(isinstance(x, str) for x in t) for t in private
        ):
            return "the decrypted request is not a JSON list of tags"
        public = [t for t in request["tags"] if t and t[0] != "encrypted"]
        return {**request, "tags": [*public, *private]}, scheme

    async def _serve(self, request: Event, t0: float) -> None:
        opened = self._open(request)
        if isinstance(opened, str):
            self.stats.errors += 1
            await self.feedback(request, "error", opened)
            return
        job, scheme = opened
        messages = request_messages(job)
        if not messages:
            self.stats.errors += 1
            await self.feedback(request, "error", "no text input (i tag) in the request")
            return
        price = self.quote(job)
        bid_tag = first_tag(job, "bid")
        bid = tag_int(bid_tag[0], 10**15) if bid_tag else None
        if price > 0 and (bid is None or bid < price):
            self.stats.errors += 1
            await self.feedback(request, "error", f"bid too low: this service charges {price} msats")
            return
        amount_tag: tuple[int, str] | None = None
        if price > 0:
            assert self.wallet is not None
            amount_tag = await self.make_invoice(request, price)
            await self.feedback(request, "payment-required", amount=amount_tag)
            payment_hash = bolt11.decode(amount_tag[1]).payment_hash
            if not await self.wallet.wait_paid(payment_hash, self.payment_timeout):
                self.stats.errors += 1
                await self.feedback(request, "error", "payment not received in time")
                return
            self.stats.earned_msats += price
        await self.feedback(request, "processing")
        params = {t[0]: t[1] for t in tag_values(job, "param") if len(t) >= 2}
        lm = self.lm
        try:
            if "max_tokens" in params:
                lm = lm.with_max_tokens(int(params["max_tokens"]))
            if "temperature" in params:
                lm = lm.with_temperature(float(params["temperature"]))
            response = await self._generate(lm, messages, request, scheme)
        except (LMError, ValueError) as exc:
            self.stats.errors += 1
            await self.feedback(request, "error", f"{type(exc).__name__}: {str(exc)[:200]}", amount=amount_tag)
            return
        usage = response.usage
        tags = [
            ["request", json.dumps(request, separators=(",", ":"), ensure_ascii=False)],
            ["e", request["id"], self.relays[0]],
            ["p", request["pubkey"]],
            # An encrypted job's inputs stay private: no i tags, the content encrypted like the request.
            *(["i", *values] for values in (tag_values(job, "i") if scheme is None else [])),
            *([["encrypted"]] if scheme is not None else []),
            ["usage", str(usage.prompt_tokens), str(usage.completion_tokens)],
            ["status", "success"],
        ]
        if amount_tag is not None:
            tags.append(["amount", str(amount_tag[0]), amount_tag[1]])
        content = self._seal(request, response.text, scheme)
        result = sign_event(self.keys, RESULT_KIND, tags, content)
        self.stats.processing_s[request["id"]] = time.perf_counter() - t0
        self.stats.completed += 1
        self.stats.job_ids.append(request["id"])
        await self._publish(result)
        await self.feedback(request, "success")

    def _seal(self, request: Event, text: str, scheme: str | None) -> str:
        if scheme is None:
            return text
        if scheme == encryption.NIP44 and len(text.encode("utf-8")) > nip44.MAX_PLAINTEXT_BYTES:
            # NIP-44 encrypts at most 65,535 bytes; a longer answer goes out NIP-04 encrypted (no
            # length limit) rather than in clear. Clients tell the scheme from the payload's shape.
            scheme = encryption.NIP04
        return encryption.encrypt_to(self.keys, request["pubkey"], text, scheme)

    async def _partial(self, request: Event, delta: str, offset: int, scheme: str | None) -> None:
        tags = [*([["encrypted"]] if scheme is not None else [])]
        for start in range(0, len(delta), _PARTIAL_CHARS):  # each piece fits one NIP-44 payload
            piece = delta[start : start + _PARTIAL_CHARS]
            offset_tag = ["offset", str(offset + start)]
            await self.feedback(
                request, "partial", content=self._seal(request, piece, scheme), tags=[offset_tag, *tags]
            )

    async def _generate(self, lm: LM, messages: list[Message], request: Event, scheme: str | None) -> LMResponse:
        """The LM's answer; with ``partials`` its text goes out as ``partial`` feedback while it streams."""
        if not self.partials:
            return await lm.acall(messages)
        stream = lm.astream(messages)
        text, sent, last = "", 0, 0.0
        async for delta in stream:
            text += delta
            now = time.monotonic()
            if len(text) > sent and now - last >= self.partial_interval:
                await self._partial(request, text[sent:], sent, scheme)
                sent, last = len(text), now
        assert stream.response is not None
        return stream.response
