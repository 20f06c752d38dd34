"""The dsrs plugin contract: every hook a plugin may implement, in one place.

A plugin is any module or object registered under the entry-point group ``dsrs``::

    [project.entry-points.dsrs]
    myprovider = "my_dsrs_plugin._plugin"

and implementing some of the hooks below, marked with :data:`dsrs.plugins.hookimpl`. A hook
implementation may accept fewer arguments than the spec names (pluggy passes only those it asks
for), so hooks can grow new arguments without breaking plugins.

Hooks, grouped by purpose:

* discovery — :func:`dsrs_register_providers`
* cost reporting — :func:`dsrs_cost` (pricing) and :func:`dsrs_usage_recorded` (sink)
* error classification — :func:`dsrs_classify_error`
* payments — :func:`dsrs_pay_invoice`
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from dsrs._provider import ProviderSpec
    from dsrs._usage import Cost, LmUsage, UsageRecord
    from dsrs.errors import LMError
    from dsrs.plugins._types import PaymentContext, PaymentProof, ProviderFailure

hookspec = pluggy.HookspecMarker("dsrs")


# --- discovery -------------------------------------------------------------------------------


@hookspec
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register the providers this plugin offers.

    Call ``register(ProviderSpec(...))`` once per provider. Called once per process, when the
    registry is first built. Keep it cheap: name the implementation as a ``"module:Class"`` string
    so nothing heavy is imported until the provider is used.
    """


# --- cost reporting --------------------------------------------------------------------------


@hookspec(firstresult=True)
def dsrs_cost(model: str, usage: LmUsage) -> Cost | None:
    """Price one call.

    ``model`` is the canonical ``"provider:model"`` string and ``usage`` its token counts. Return a
    :class:`dsrs.Cost` (USD and/or msats; the missing side is filled from the configured rate), or
    ``None`` when this plugin does not know the model. The first non-``None`` answer wins; a pricing
    plugin that should override the providers' own tables marks its hook ``tryfirst=True``. When no
    plugin knows the model, the call's cost is ``None`` (unknown), never 0.
    """


@hookspec
def dsrs_usage_recorded(record: UsageRecord) -> None:
    """Receive every finished call's :class:`dsrs.UsageRecord` (tokens, cost, provider, lane).

    For logging, metrics and ledgers. Must not raise; a failing sink is warned about and skipped.
    """


# --- error classification --------------------------------------------------------------------


@hookspec(firstresult=True)
def dsrs_classify_error(provider: str, error: ProviderFailure) -> LMError | None:
    """Turn a provider failure into a typed :class:`dsrs.errors.LMError`.

    ``error`` carries the HTTP status, headers and body (or the exception, or a protocol-level
    failure such as NIP-90 feedback). Classify from structured fields first (an error ``code`` or
    ``status`` in the body), then the HTTP status; never by searching the body text, which may echo
    the user's prompt. Return ``None`` for failures of other providers; dsrs falls back to a generic
    classification by status and exception type.
    """


# --- payments --------------------------------------------------------------------------------


@hookspec(firstresult=True)
def dsrs_pay_invoice(bolt11: str, amount_msats: int, context: PaymentContext) -> PaymentProof | None:
    """Pay a Lightning invoice (used by the Pylon swarm provider).

    Called only after the caller's spend policy approved ``amount_msats`` (which equals the
    invoice's own amount). Return a :class:`dsrs.plugins.PaymentProof` when paid, ``None`` when this
    plugin is not the wallet to use, or raise :class:`dsrs.errors.PaymentError` when payment failed.
    """


#: Names of every hook, in the order documented above (a test keeps this and the module in sync).
HOOK_NAMES = (
    "dsrs_register_providers",
    "dsrs_cost",
    "dsrs_usage_recorded",
    "dsrs_classify_error",
    "dsrs_pay_invoice",
)
