"""The exit codes of ``dsrs``: one per class of failure, so scripts can tell them apart.

==== ===========================================================================================
code meaning
==== ===========================================================================================
0    success
1    any other failure (an error without a more specific code below)
2    usage error: bad arguments, unknown model, provider or lane, no prompt
3    authentication: the key is missing, invalid or not allowed (AuthenticationError, PermissionDeniedError)
4    rate limited (RateLimitError): try again later
5    budget or quota spent (BudgetExceededError, QuotaExceededError, PaymentError)
6    unreachable or timed out (ProviderUnavailableError, LMTimeoutError; a Redis server that is down)
7    the provider refused the request (InvalidRequestError, ContextWindowExceededError, ContentFilterError)
8    the provider's answer was not the documented format (ResponseParseError)
130  interrupted (Ctrl-C)
141  stdout was closed early (``dsrs ... | head -1``): nothing is printed about it
==== ===========================================================================================

When every lane of a LaneMux failed, the code is the one all lanes' errors share, else 1.
"""

from __future__ import annotations

from dsrs import errors

__all__ = [
    "EXIT_CODES",
    "OK",
    "FAILURE",
    "USAGE",
    "UNREACHABLE",
    "BROKEN_PIPE",
    "INTERRUPTED",
    "UsageError",
    "exit_code",
]

OK = 0
FAILURE = 1
USAGE = 2
UNREACHABLE = 6
INTERRUPTED = 130
BROKEN_PIPE = 141

#: Error class -> exit code; the first entry the error is an instance of wins (subclasses first).
EXIT_CODES: tuple[tuple[type[errors.LMError], int], ...] = (
    (errors.UnknownModelError, USAGE),  # includes ProviderLoadError
    (errors.AuthenticationError, 3),
    (errors.PermissionDeniedError, 3),
    (errors.RateLimitError, 4),
    (errors.BudgetExceededError, 5),
    (errors.QuotaExceededError, 5),
    (errors.PaymentError, 5),
    (errors.ProviderUnavailableError, UNREACHABLE),
    (errors.LMTimeoutError, UNREACHABLE),
    (errors.InvalidRequestError, 7),  # includes ContextWindowExceededError
    (errors.ContentFilterError, 7),
    (errors.ResponseParseError, 8),
)


class UsageError(Exception):
    """A mistake in the command line (exit code 2); the message says which argument and why."""


def exit_code(exc: BaseException) -> int:
    """The documented exit code for ``exc``."""
    if isinstance(exc, UsageError):
        return USAGE
    if isinstance(exc, errors.AllLanesFailedError):
        codes = {exit_code(e) if isinstance(e, BaseException) else FAILURE for e in exc.errors.values()}
        return codes.pop() if len(codes) == 1 else FAILURE
    if isinstance(exc, errors.LMError):
        for cls, code in EXIT_CODES:
            if isinstance(exc, cls):
                return code
    if isinstance(exc, (ConnectionError, TimeoutError)):  # e.g. the Redis server of `dsrs usage`
        return UNREACHABLE
    return FAILURE
