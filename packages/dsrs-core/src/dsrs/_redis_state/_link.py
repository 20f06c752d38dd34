"""Settings and the connection to one Redis server: per-loop async clients, outage tracking.

Every shared-state component talks to Redis through a :class:`RedisLink`. The link knows whether
Redis is currently reachable: the first failed command marks it *down* (one warning per outage),
after which components use their local fallback without paying a connection attempt on every
call; every ``retry_interval`` seconds one command is let through to probe, and the first that
succeeds marks the link *up* again (shared state resumes, recovery callbacks run).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

try:
    import redis
    import redis.asyncio as aredis
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("dsrs._redis_state needs the Redis client: pip install 'dsrs-core[redis]'") from exc

__all__ = [
    "ENV_FAIL_OPEN",
    "ENV_NAMESPACE",
    "ENV_URL",
    "REDIS_ERRORS",
    "RedisLink",
    "RedisSettings",
    "RedisStateWarning",
    "RedisUnavailableError",
    "redact_url",
]

log = logging.getLogger("dsrs._redis_state")

ENV_URL = "DSRS_REDIS_URL"
ENV_NAMESPACE = "DSRS_REDIS_NAMESPACE"
ENV_FAIL_OPEN = "DSRS_REDIS_FAIL_OPEN"

#: What makes Redis unusable for shared state: a lost or unreachable server (OSError covers refused
#: sockets), and a server that answers with errors (out of memory, read-only replica, ...). Either
#: way the process goes on with local state, as the module docstring says.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.RedisError,
    OSError,
    asyncio.TimeoutError,
)

_CHECK_ERRORS = REDIS_ERRORS


_WARN_EVERY_S = 60.0


class RedisStateWarning(RuntimeWarning):
    """Shared state is degraded: Redis was lost and this process runs on local state."""


class RedisUnavailableError(ConnectionError):
    """Redis could not be reached when shared state was set up (names the URL's source)."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class RedisSettings:
    """How to reach Redis and how shared state behaves.

    ``namespace`` prefixes every key (``{namespace}:...``) so several applications can share one
    server. ``fail_open=True`` lets budget spends go on (tracked locally, replayed later) while
    Redis is lost; the default refuses them.
    """

    url: str = field(repr=False)  # may hold a password: see ``safe_url``
    namespace: str = "dsrs"
    fail_open: bool = False
    #: A reservation not settled within this many seconds is released (a crashed worker's hold).
    reservation_ttl: float = 60.0
    #: Cache entries expire after this many seconds (None: never; the size bound still applies).
    cache_ttl: float | None = 7 * 24 * 3600.0
    #: At most this many cached responses in this namespace; the least recently used go first.
    cache_max_entries: int = 100_000
    #: Responses bigger than this (encoded) are not stored in Redis.
    cache_max_value_bytes: int = 1 << 20
    #: Usage-ledger day buckets expire after this many days.
    ledger_retention_days: int = 400
    socket_timeout: float = 2.0
    connect_timeout: float = 2.0
    #: Connections per event loop; more concurrent commands wait for one (Redis runs them one by
    #: one anyway), so 100 concurrent calls do not open 100 sockets at once.
    max_connections: int = 16
    #: While Redis is down, try it again at most this often (seconds).
    retry_interval: float = 1.0
    #: Where the URL came from, for error messages ("DSRS_REDIS_URL" or "RedisState(url=...)").
    source: str = field(default="RedisState(url=...)", compare=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"{self.source} must be a redis://, rediss:// or unix:// URL, got {redact_url(self.url)!r}"
            )
        if not self.namespace or any(c in self.namespace for c in " \t\r\n"):
            raise ValueError(f"namespace must be a non-empty word without spaces, got {self.namespace!r}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {self.max_connections!r}")
        if self.reservation_ttl <= 0:
            raise ValueError(f"reservation_ttl must be positive, got {self.reservation_ttl!r}")
        if self.cache_max_entries <= 0:
            raise ValueError(f"cache_max_entries must be positive, got {self.cache_max_entries!r}")

    @classmethod
    def from_env(cls, url: str | None = None, **overrides: Any) -> RedisSettings:
        """Settings from ``url`` or ``$DSRS_REDIS_URL``, ``$DSRS_REDIS_NAMESPACE``, ``$DSRS_REDIS_FAIL_OPEN``."""
        source = "RedisState(url=...)"
        if url is None:
            url = os.environ.get(ENV_URL, "").strip()
            source = ENV_URL
            if not url:
                raise RedisUnavailableError(
                    f"no Redis URL: set {ENV_URL} (e.g. redis://127.0.0.1:6379/0) or pass RedisState(url)"
                )
        overrides.setdefault("namespace", os.environ.get(ENV_NAMESPACE, "").strip() or "dsrs")
        if "fail_open" not in overrides and ENV_FAIL_OPEN in os.environ:
            overrides["fail_open"] = _env_flag(ENV_FAIL_OPEN)
        return cls(url=url, source=source, **overrides)

    def with_(self, **changes: Any) -> RedisSettings:
        return replace(self, **changes)

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)


class RedisLink:
    """One Redis server as this process sees it."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = weakref.WeakKeyDictionary()
        self._sync: redis.Redis | None = None
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._recovery: list[Callable[[], None]] = []
        self._last_warning: float | None = None
        self._warned = False
        self.outages = 0
        from dsrs import _runtime

        _runtime.on_fork(self)

    def after_fork(self) -> None:
        """In a forked child: new connection pools (the parent's sockets and loops are not ours)."""
        self._clients = weakref.WeakKeyDictionary()
        self._sync = None
        self._lock = threading.Lock()

    # --- clients ----------------------------------------------------------------------------

    def _kwargs(self, *, for_async: bool) -> dict[str, Any]:
        # One quick retry heals a connection the server dropped (restart); no backoff sleeps.
        retry = AsyncRetry(NoBackoff(), 1) if for_async else Retry(NoBackoff(), 1)
        return {
            "socket_timeout": self.settings.socket_timeout,
            "socket_connect_timeout": self.settings.connect_timeout,
            "retry": retry,
            "client_name": f"dsrs-{os.getpid()}",
        }

    def client(self) -> aredis.Redis:
        """The async client for the running event loop (one pool per loop)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            pool = aredis.BlockingConnectionPool.from_url(
                self.settings.url,
                max_connections=self.settings.max_connections,
                timeout=self.settings.connect_timeout + self.settings.socket_timeout,
                **self._kwargs(for_async=True),
            )
            client = aredis.Redis(connection_pool=pool)
            self._clients[loop] = client
        return client

    def sync_client(self) -> redis.Redis:
        """A thread-safe blocking client (setup checks, the ledger writer, the CLI)."""
        with self._lock:
            if self._sync is None:
                self._sync = redis.Redis.from_url(self.settings.url, **self._kwargs(for_async=False))
            return self._sync

    def check(self) -> None:
        """Ping Redis now; raise :class:`RedisUnavailableError` naming where the URL came from."""
        try:
            if not self.sync_client().ping():
                raise redis.exceptions.ConnectionError("PING did not answer PONG")
        except _CHECK_ERRORS as exc:
            raise RedisUnavailableError(
                f"cannot reach Redis at {self.settings.safe_url} (from {self.settings.source}): "
                f"{type(exc).__name__}: {exc}. Start the server or fix {ENV_URL}."
            ) from None
        self._check_eviction_policy()

    def _check_eviction_policy(self) -> None:
        """Budgets and the ledger must not be evicted: say so if the server may evict any key."""
        try:
            reply = cast("dict[str, Any]", self.sync_client().config_get("maxmemory-policy"))
            policy = reply.get("maxmemory-policy", "")
        except _CHECK_ERRORS:  # CONFIG is often disabled on managed servers: nothing to say then
            return
        if str(policy).startswith("allkeys-"):
            log.warning(
                "Redis at %s has maxmemory-policy %s: it may evict budget totals and usage counts "
                "(spent msats would be forgotten); use noeviction or a volatile-* policy, or a separate database",
                self.settings.safe_url,
                policy,
            )

    async def aclose(self) -> None:
        """Close the current loop's client (others are closed when their loop goes away)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - called from sync code
            return
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
            await client.connection_pool.disconnect()

    def close(self) -> None:
        with self._lock:
            if self._sync is not None:
                self._sync.close()
                self._sync = None

    # --- outage tracking ------------------------------------------------------------------

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def should_try(self) -> bool:
        """False while Redis is known down and it is not yet time to probe it again."""
        if self._down_since is None:
            return True
        now = time.monotonic()
        with self._lock:
            if now >= self._next_probe:
                self._next_probe = now + self.settings.retry_interval
                return True
        return False

    def mark_down(self, what: str, exc: BaseException) -> None:
        """A command failed for lack of Redis: warn once per outage (at most once a minute), then stay quiet."""
        with self._lock:
            first = self._down_since is None
            warn = False
            if first:
                now = time.monotonic()
                self._down_since = now
                self._next_probe = now + self.settings.retry_interval
                self.outages += 1
                # A server that answers reads but refuses writes would flap up and down on every call.
                warn = self._last_warning is None or now - self._last_warning >= _WARN_EVERY_S
                if warn:
                    self._last_warning = now
                self._warned = warn
        if warn:
            message = (
                f"Redis at {self.settings.safe_url} is unreachable or failing ({what}: {type(exc).__name__}: {exc}); "
                "continuing on local state: cache and lane health are per-process, "
                + (
                    "budget spends are tracked locally (fail-open) until Redis is back"
                    if self.settings.fail_open
                    else "budget spends are refused (fail-closed) until Redis is back"
                )
            )
            log.warning(message)
            warnings.warn(message, RedisStateWarning, stacklevel=3)

    def mark_up(self) -> None:
        """A command succeeded: if Redis had been down, shared state resumes."""
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            down_for = time.monotonic() - self._down_since
            self._down_since = None
            callbacks = list(self._recovery)
        log.log(
            logging.WARNING if self._warned else logging.INFO,
            "Redis at %s is back after %.1fs; shared state resumes",
            self.settings.safe_url,
            down_for,
        )
        for callback in callbacks:
            try:
                callback()
            except Exception:  # pragma: no cover - a callback's bug must not break calls
                log.exception("Redis recovery callback failed")

    def on_recovery(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` (sync, quick) each time Redis comes back after an outage."""
        self._recovery.append(callback)

    def key(self, *parts: str) -> str:
        """A namespaced key: ``{namespace}:part:part``."""
        return ":".join((self.settings.namespace, *parts))
