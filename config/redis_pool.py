"""How a process talks to Redis: one shared pool for Django's cache, and what every pool does when Redis restarts.

Django keeps a cache backend per thread, and under ASGI every request's sync code (DRF authentication and
throttling) runs in a fresh thread, so the stock backend opened a new Redis connection, handshake included,
for each classify request: about 2 ms of the request's 12. This pool class, passed as the cache's
`pool_class` option, hands every backend instance the same pool (redis-py pools are thread-safe).

A pooled connection outlives the Redis it was opened to: after a restart its first command fails ("Connection
closed by server") although the new Redis answers, which made the first classify request and the first
websocket after a restart 500s. Every pool here (the cache's, the classify fast path's, the Channels layer's)
therefore retries a command once, at once, on a fresh connection when its connection fails (`retry_once`); a
second failure is an outage, and the caller answers 503 (jobs/outages.py). Connecting gives up after
CONNECT_TIMEOUT_S, so an unreachable host is an outage within seconds rather than the system's minutes.
"""

from __future__ import annotations

import threading

import redis
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff

CONNECT_TIMEOUT_S = 2  # how long opening a connection to Redis may take before Redis counts as unreachable
COMMAND_TIMEOUT_S = 5  # how long a command may wait for its answer (not the Channels layer's blocking reads)
# What a client raises when Redis cannot be reached (refused, reset, timed out, no connection left in a pool).
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def retry_once(*, for_asyncio: bool) -> redis.retry.Retry | redis.asyncio.retry.Retry:
    """A redis-py retry policy: one more try, without waiting, on a new connection, after a connection error or
    timeout (a stale connection is replaced; Redis down fails as fast as before). An asyncio pool needs the
    asyncio class."""
    retry = redis.asyncio.retry.Retry if for_asyncio else redis.retry.Retry
    return retry(NoBackoff(), 1)


class SharedConnectionPool(redis.ConnectionPool):
    """One pool per URL and options in the process; its connections retry once (retry_once) and time out."""

    _shared: dict[tuple, redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs):
        key = (url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                options = {
                    "retry": retry_once(for_asyncio=False), "socket_connect_timeout": CONNECT_TIMEOUT_S,
                    "socket_timeout": COMMAND_TIMEOUT_S, **kwargs,
                }  # fmt: skip
                pool = cls._shared[key] = super().from_url(url, **options)
            return pool

    @classmethod
    def forget(cls, url: str) -> None:
        """Close and drop the pools of one URL (tests that start a Redis of their own)."""
        with cls._lock:
            for key in [key for key in cls._shared if key[0] == url]:
                cls._shared.pop(key).disconnect()
