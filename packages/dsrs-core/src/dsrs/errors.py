"""Typed errors raised by dsrs.

Every failure a provider reports becomes one of these classes, so callers (and
:class:`dsrs.LaneMux`) can decide what to do by *type*, never by reading text:

====================================  =========  ==================================
class                                 retryable  typical cause
====================================  =========  ==================================
:class:`RateLimitError`               yes        429, too many requests
:class:`QuotaExceededError`           no         429 ``insufficient_quota``, spent credit
:class:`AuthenticationError`          no         401, bad or missing key
:class:`PermissionDeniedError`        no         403
:class:`ContextWindowExceededError`   no         prompt longer than the model's window
:class:`InvalidRequestError`          no         400/404/422, unknown model on the server
:class:`ContentFilterError`           no         provider refused on policy grounds
:class:`ProviderUnavailableError`     yes        5xx, overloaded, connection refused
:class:`LMTimeoutError`               yes        no answer in time
:class:`ResponseParseError`           yes        HTML or truncated body
:class:`BudgetExceededError`          no         a msats budget would be overspent
:class:`PaymentError`                 no         a Lightning payment failed or was refused
:class:`UnknownModelError`            no         no installed provider serves the model
:class:`ProviderLoadError`            no         a provider's code failed to import
====================================  =========  ==================================

Bodies are kept for debugging but redacted: secrets are replaced and the text is
truncated, so an error can be logged safely.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dsrs._validate import InvalidTypeError, InvalidValueError, UnknownParameterError

__all__ = [
    "AllLanesFailedError",
    "AuthenticationError",
    "BudgetExceededError",
    "ContentFilterError",
    "ContextWindowExceededError",
    "InvalidRequestError",
    "InvalidTypeError",
    "InvalidValueError",
    "UnknownParameterError",
    "LMError",
    "LMTimeoutError",
    "PaymentError",
    "PermissionDeniedError",
    "ProviderFailure",
    "ProviderLoadError",
    "ProviderUnavailableError",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseParseError",
    "UnknownModelError",
    "redact",
]

_MAX_BODY = 2000
# Shapes of credentials that may be echoed by a server or a proxy.
_SECRET_PATTERNS = (
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"gsk_[A-Za-z0-9]{8,}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"nsec1[02-9ac-hj-np-z]{20,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)(api[_-]?key[\"'=:\s]+)[A-Za-z0-9._\-]{8,}"),
)


def redact(text: str | bytes | None, secrets: Iterable[str | None] = ()) -> str | None:
    """Return ``text`` with known secrets and credential-shaped tokens masked, truncated."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text) if pattern.groups else pattern.sub("***", text)
    if len(text) > _MAX_BODY:
        text = text[:_MAX_BODY] + f"… [{len(text) - _MAX_BODY} more chars]"
    return text


class LMError(Exception):
    """Base class of every error dsrs raises about a language-model call."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        body: str | bytes | None = None,
        code: str | None = None,
        secrets: Iterable[str | None] = (),
    ) -> None:
        secrets = tuple(secrets)
        self.message = redact(message, secrets) or ""
        self.provider = provider
        self.model = model
        self.status = status if isinstance(status, int) and not isinstance(status, bool) else None
        self.retry_after = retry_after
        # A code copied from a server's body may echo anything the request held: redacted too.
        self.code = redact(code, secrets) if code is not None else None
        self.body = redact(body, secrets)
        super().__init__(self.message)

    def redact_with(self, secrets: Iterable[str | None]) -> LMError:
        """Mask ``secrets`` in this error's message, code and body (for an error raised by code that
        did not know them, e.g. a codec decoding a body that quotes a key); returns the error."""
        secrets = tuple(s for s in secrets if s)
        if secrets:
            self.message = redact(self.message, secrets) or ""
            self.code = redact(self.code, secrets) if self.code is not None else None
            self.body = redact(self.body, secrets)
            self.args = (self.message,)
        return self

    def __str__(self) -> str:
        where = ":".join(p for p in (self.provider, self.model) if p)
        parts = [f"[{where}] " if where else "", self.message]
        if self.status is not None:
            parts.append(f" (HTTP {self.status})")
        if self.retry_after is not None:
            parts.append(f" retry after {self.retry_after:g}s")
        return "".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, "
            f"model={self.model!r}, status={self.status!r}, retry_after={self.retry_after!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keep errors picklable (multiprocessing, pytest-xdist) with their attributes.
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[LMError], message: str, state: dict[str, object]) -> LMError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class RateLimitError(LMError):
    """Too many requests; wait ``retry_after`` seconds (when known) or use another lane."""

    retryable = True


class QuotaExceededError(LMError):
    """The account's quota or credit is spent; retrying soon will not help."""


class AuthenticationError(LMError):
    """The API key is missing, invalid or revoked."""


class PermissionDeniedError(LMError):
    """The key is valid but not allowed to use this model or endpoint."""


class InvalidRequestError(LMError):
    """The provider rejected the request itself (bad parameter, unknown model, ...)."""


class ContextWindowExceededError(InvalidRequestError):
    """The prompt (plus requested output) does not fit the model's context window."""


class ContentFilterError(LMError):
    """The provider refused the prompt or the answer on content-policy grounds."""


class ProviderUnavailableError(LMError):
    """Server error, overload, or the server could not be reached at all."""

    retryable = True


class LMTimeoutError(LMError):
    """No (complete) answer within the timeout."""

    retryable = True


class ResponseParseError(LMError):
    """The provider answered with something that is not the documented format."""

    retryable = True


class BudgetExceededError(LMError):
    """The call would spend more msats than the remaining budget; nothing was spent."""


class PaymentError(LMError):
    """A Lightning payment was refused by the spend policy or failed in the wallet."""


class UnknownModelError(LMError):
    """No installed provider serves this model string."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        installed: Iterable[str] = (),
        suggestion: str | None = None,
        install_hint: str | None = None,
    ) -> None:
        self.installed = tuple(installed)
        self.suggestion = suggestion
        self.install_hint = install_hint
        super().__init__(message, model=model)


class ProviderLoadError(UnknownModelError):
    """A registered provider's implementation could not be imported (a broken or partial install)."""


class AllLanesFailedError(LMError):
    """Every lane of a :class:`dsrs.LaneMux` failed; ``errors`` maps lane name to its error."""

    def __init__(self, errors: dict[str, LMError | str]) -> None:
        self.errors = dict(errors)
        lines = "; ".join(f"{lane}: {err}" for lane, err in self.errors.items())
        super().__init__(f"all lanes failed — {lines}" if lines else "no lane available")


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """A failed call, before classification.

    Exactly what the provider saw: the HTTP ``status``/``headers``/``body`` of an error response,
    or the ``exception`` raised on the way, or a protocol-level ``code`` (e.g. NIP-90 feedback).
    ``wire`` names the wire format (``"openai-chat"``), so a codec's classifier can claim
    failures of every provider that speaks it. ``secrets`` lists values to redact from anything derived from it.
    """

    provider: str
    model: str | None = None
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    exception: BaseException | None = None
    code: str | None = None
    message: str | None = None
    wire: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)
