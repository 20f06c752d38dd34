"""Paying an invoice through the ``dsrs_pay_invoice`` hook: at most once per process, proofs checked.

* :class:`InvoiceRegistry` — every payment hash this process has started to pay, and for which job.
  An invoice is never handed to a wallet twice (two jobs, two relays, a provider reusing an
  invoice); a claim is given back only when the wallet said for certain that nothing was paid.
* :func:`call_wallet` — the first ``dsrs_pay_invoice`` plugin that answers, *with its name*, so a
  bad answer can be blamed on the right plugin.
* :func:`check_proof` — what the wallet returned, validated. A malformed proof is a warning naming
  the plugin, never an exception: once a wallet was called the money may have left, and the job
  must still wait for the result it paid for.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass

from dsrs.plugins import DsrsPluginWarning, PaymentContext, PaymentProof, get_host, hooks

__all__ = ["CheckedProof", "InvoiceRegistry", "call_wallet", "check_proof", "invoices"]

_HEX = frozenset("0123456789abcdef")


class InvoiceRegistry:
    """Payment hashes claimed for payment in this process (bounded: the oldest are forgotten)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._claims: OrderedDict[str, str] = OrderedDict()
        self.max_entries = max_entries

    def claim(self, payment_hash: str, job_id: str) -> str | None:
        """Claim ``payment_hash`` for ``job_id``; ``None`` if it is ours now, else the job that holds it."""
        with self._lock:
            holder = self._claims.get(payment_hash)
            if holder is not None:
                return holder
            self._claims[payment_hash] = job_id
            while len(self._claims) > self.max_entries:
                self._claims.popitem(last=False)
            return None

    def release(self, payment_hash: str, job_id: str) -> None:
        """Give a claim back (only when the wallet said nothing was paid)."""
        with self._lock:
            if self._claims.get(payment_hash) == job_id:
                del self._claims[payment_hash]

    def holder(self, payment_hash: str) -> str | None:
        with self._lock:
            return self._claims.get(payment_hash)


_REGISTRY = InvoiceRegistry()


def invoices() -> InvoiceRegistry:
    """The process-wide registry."""
    return _REGISTRY


def call_wallet(bolt11: str, amount_msats: int, context: PaymentContext) -> tuple[object, str]:
    """``(answer, plugin name)`` of the first ``dsrs_pay_invoice`` plugin that answers (``None`` if none)."""
    caller = get_host().pm.hook.dsrs_pay_invoice
    impls = caller.get_hookimpls()
    if any(i.hookwrapper or i.wrapper for i in impls):  # wrappers need pluggy's own call loop
        return hooks().pay_invoice(bolt11, amount_msats, context), "a dsrs_pay_invoice plugin"
    args = {"bolt11": bolt11, "amount_msats": amount_msats, "context": context}
    for impl in reversed(impls):  # pluggy's order: last registered (and tryfirst) first
        answer = impl.function(**{name: args[name] for name in impl.argnames if name in args})
        if answer is not None:
            return answer, impl.plugin_name
    return None, ""


@dataclass(frozen=True)
class CheckedProof:
    """The usable parts of a wallet's answer; ``problems`` lists what was wrong with it."""

    preimage: str | None
    fee_msats: int
    wallet: str
    problems: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems


def check_proof(answer: object, *, plugin: str, payment_hash: str, fee_cap_msats: int) -> CheckedProof:
    """Validate a wallet's answer; warn (naming ``plugin``) about anything malformed.

    The fee counted is the reported one when it is a non-negative int, at most ``fee_cap_msats``
    (what is left of the budget): a lying fee can spend the budget, never more.
    """
    problems: list[str] = []
    preimage: str | None = None
    fee = 0
    wallet = plugin
    if not isinstance(answer, PaymentProof):
        problems.append(f"returned {type(answer).__name__} instead of a dsrs.plugins.PaymentProof")
    else:
        wallet = answer.wallet if isinstance(answer.wallet, str) and answer.wallet else plugin
        raw_fee = answer.fee_msats
        if isinstance(raw_fee, bool) or not isinstance(raw_fee, int) or raw_fee < 0:
            problems.append(f"fee_msats={raw_fee!r} is not a non-negative int (counted as 0)")
        elif raw_fee > fee_cap_msats:
            problems.append(f"fee_msats={raw_fee} is more than the budget has left (counted as {fee_cap_msats})")
            fee = fee_cap_msats
        else:
            fee = raw_fee
        raw = answer.preimage
        if raw is not None:
            ok = isinstance(raw, str) and len(raw) == 64 and set(raw.lower()) <= _HEX
            if ok and hashlib.sha256(bytes.fromhex(raw)).hexdigest() == payment_hash:
                preimage = raw.lower()
            else:
                problems.append("its preimage does not match the invoice's payment hash")
    if problems:
        warnings.warn(
            f"dsrs-pylon: wallet plugin {plugin!r} {'; '.join(problems)}. The payment is counted as made "
            "(the money may have left) and the job waits for its result.",
            DsrsPluginWarning,
            stacklevel=3,
        )
    return CheckedProof(preimage, fee, wallet, tuple(problems))
