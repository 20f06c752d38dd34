"""Keeping the keys a request carries out of transport errors and the HTTP libraries' logs.

:func:`scrub` masks, in a message, the values of the request's credential headers, URL query
parameters that carry keys, and credential-shaped tokens (those :func:`dsrs.errors.redact` masks).
:class:`SecretLogFilter` does the same to every record of the loggers httpx, httpcore and aiohttp
write to (their DEBUG logs print headers), including credential headers' values in the
``(b'name', b'value')`` form httpcore logs them in.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from dsrs.errors import _SECRET_PATTERNS

__all__ = [
    "LOGGERS",
    "SecretLogFilter",
    "debug_logging_on",
    "describe",
    "install_log_filter",
    "remember_secrets",
    "request_secrets",
    "scrub",
]

#: Loggers the filter sits on. A logger's filters see only records logged on that very logger
#: (not those propagated from its children), so every module logger is listed.
LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "aiohttp",
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
)

_CREDENTIAL_HEADER = re.compile(r"(?i)^(?:.*-)?(?:authorization|api-key|key|token|secret|cookie)$|^x-.*(?:key|token)$")
_NAMES = r"(?:[a-z0-9-]*-)?(?:authorization|api-key|cookie|token|secret)|x-[a-z0-9-]*key"
# httpcore: [(b'authorization', b'Bearer sk-...'), ...]; others: "authorization: Bearer ...", 'x-api-key': '...'
_HEADER_PAIR = re.compile(rf"(?i)(b?['\"](?:{_NAMES})['\"]\s*,\s*b?['\"])[^'\"]*")
_HEADER_LINE = re.compile(rf"(?i)((?:^|[\s{{(,'\"])(?:{_NAMES})['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+)?[^\s,'\"}}\]]+")
_QUERY_KEY = re.compile(r"(?i)([?&](?:key|api[_-]?key|token|access_token|auth)=)[^&#\s'\"]+")

# Credential values seen on requests while the HTTP libraries' DEBUG logging is on (bounded).
_remembered: OrderedDict[str, None] = OrderedDict()
_REMEMBER_MAX = 64


def request_secrets(headers: Mapping[str, str]) -> list[str]:
    """The credential values in ``headers`` (``Bearer x`` gives both the whole value and ``x``)."""
    out: list[str] = []
    for name, value in headers.items():
        if value and _CREDENTIAL_HEADER.match(name):
            out.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                out.append(token.strip())
    return out


def remember_secrets(headers: Mapping[str, str]) -> None:
    """Let the log filter mask ``headers``' credential values too (only while DEBUG logging is on)."""
    for value in request_secrets(headers):
        _remembered[value] = None
        _remembered.move_to_end(value)
        while len(_remembered) > _REMEMBER_MAX:
            _remembered.popitem(last=False)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with ``secrets``, credential headers' values, key query parameters and key shapes masked."""
    for secret in (*secrets, *_remembered):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _HEADER_PAIR.sub(r"\1***", text)
    text = _HEADER_LINE.sub(r"\1***", text)
    text = _QUERY_KEY.sub(r"\1***", text)
    for pattern in _SECRET_PATTERNS:  # the key shapes dsrs.errors.redact masks, without its truncation
        text = pattern.sub(lambda m: m.group(1) + "***", text) if pattern.groups else pattern.sub("***", text)
    return text


_MAX_ERROR_TEXT = 500


def describe(exc: BaseException, headers: Mapping[str, str]) -> str:
    """``"Type: text"`` of an HTTP library's exception, masked (see :func:`scrub`) and capped: its
    text can echo what the server sent (aiohttp quotes 8 KiB of an overlong header line)."""
    text = scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, request_secrets(headers))
    return (
        text
        if len(text) <= _MAX_ERROR_TEXT
        else text[:_MAX_ERROR_TEXT] + f"… [{len(text) - _MAX_ERROR_TEXT} more chars]"
    )


class SecretLogFilter(logging.Filter):
    """Rewrites a record's message (and its formatted exception) with secrets masked; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record to logging's own error path
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = SecretLogFilter()


def install_log_filter() -> None:
    """Put the filter on every logger in :data:`LOGGERS` (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


#: The loggers that may print request headers (looked up once: getLogger takes the logging lock).
_HEADER_LOGGERS = (logging.getLogger("httpcore.http11"), logging.getLogger("aiohttp.client"))


def debug_logging_on() -> bool:
    """Whether any HTTP library logger would emit DEBUG records (then credential values are remembered)."""
    # isEnabledFor is answered from each logger's own cache after the first call: cheap per request.
    return _HEADER_LOGGERS[0].isEnabledFor(logging.DEBUG) or _HEADER_LOGGERS[1].isEnabledFor(logging.DEBUG)
