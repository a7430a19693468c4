"""One Redis connection pool per process for Django's cache.

Django keeps a cache backend per thread, and under ASGI every request's sync code (DRF authentication and
throttling) runs in a fresh thread, so the stock backend opened a new Redis connection, handshake included,
for each classify request: about 2 ms of the request's 12. This pool class, passed as the cache's
`pool_class` option, hands every backend instance the same pool (redis-py pools are thread-safe).
"""

from __future__ import annotations

import threading

import redis


class SharedConnectionPool(redis.ConnectionPool):
    _shared: dict[tuple, redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs):
        key = (url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool
