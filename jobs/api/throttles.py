"""The classify throttle, shared by the DRF view and the ASGI fast path (api.fastpath).

Runs in: the web process.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from django.core.cache import cache, caches
from rest_framework.throttling import SimpleRateThrottle


@functools.cache
def _key_maker():
    # `cache` is a per-thread/per-request proxy that builds a backend on first use in each context; the key
    # format only needs one backend, made once.
    return caches.create_connection("default").make_key


def _make_key(key: str) -> str:
    return _key_maker()(key)


class ClassifyRateThrottle(SimpleRateThrottle):
    """DISTILLERY_CLASSIFY_RATE per user, counted in fixed windows in Redis.

    DRF's own throttles keep a list of timestamps per user, read and rewritten on every request; a counter
    that Redis increments is one atomic round trip, which the fast path can make without leaving the event
    loop. Both paths count in the same key, so a user's rate is the same whichever path answers.
    """

    scope = "classify"
    # What an explanation costs in classify requests: a forward and a backward pass with attention kept, measured
    # at about four times a classify of the same text on CPU.
    EXPLAIN_COST = 4

    def get_rate(self):
        # Read at each request (DRF binds THROTTLE_RATES when the class is defined), so tests and settings
        # changes take effect.
        from rest_framework.settings import api_settings

        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def window_key(self, user_id: int) -> tuple[str, float]:
        """The Redis key of the user's current window, and when that window ends (epoch seconds)."""
        window = int(time.time() // self.duration)
        return _make_key(f"throttle:classify:{user_id}:{window}"), (window + 1) * self.duration

    def allow_request(self, request, view) -> bool:
        if self.rate is None or not request.user.is_authenticated:
            return True
        cost = view.classify_cost(request) if hasattr(view, "classify_cost") else 1
        wait = self.charge(request.user.pk, cost)
        self._wait = wait or 0.0
        return wait is None

    def charge(self, user_id: int, cost: int = 1) -> float | None:
        """Count `cost` requests against the user's window: None when they fit the rate, else the seconds until
        the window ends. Every classify-like route calls this (the HTML classify page too), so they share one
        count."""
        if self.rate is None:
            return None
        key, window_end = self.window_key(user_id)
        raw = key.split(":", 2)[2]  # cache.add/incr apply the prefix and version themselves
        cache.add(raw, 0, self.duration + 1)
        count = cache.incr(raw, cost)
        return None if count <= self.num_requests else max(window_end - time.time(), 0.0)

    def wait(self) -> float:
        return max(self._wait, 0.0)


# How many of a user's requests one web process reserves per Redis round trip on the fast path: at most
# LEASE_MAX, and at most 1/LEASE_SHARE of what the process last saw left of the user's quota, so the last
# eighth of a quota is always counted one request at a time (exactly).
LEASE_MAX = 32
LEASE_SHARE = 8


@dataclass
class _Lease:
    window: str  # the Redis key of the window the slots belong to
    window_end: float  # when that window ends (epoch seconds)
    slots: int = 0  # reserved and not yet used
    seen: int = 0  # the window's count, last seen in Redis
    exhausted: bool = False  # Redis had no slot left within the rate: refuse until the window ends
    pending: asyncio.Future | None = None  # a reservation in flight, which other requests wait for


class QuotaLeases:
    """The fast path's side of ClassifyRateThrottle: the same Redis window counter, reserved in blocks.

    Counting each request in Redis took a round trip of about 0.9 ms on the 2-core bench machine, 10% of a
    short sentence's answer. Instead a process reserves a block of the user's window at once (INCRBY n) and
    serves it from memory; the Redis count therefore says how many requests were reserved, and no process
    is ever granted a slot past the rate, so the user's total over all processes and both paths stays within
    it. One reservation per user is in flight at a time; concurrent requests wait for it. The cost: a
    process can hold up to LEASE_MAX reserved slots it never uses, which count against the user until the
    window ends (never more than 1/LEASE_SHARE of the quota left when it reserved them). Windows and keys are
    the DRF view's, so the two paths keep sharing one count.
    """

    def __init__(self, incrby: Callable[[str, int, int], Awaitable[int]]) -> None:
        self._incrby = incrby  # (key, n, ttl seconds) -> the key's count after adding n
        self._leases: dict[int, _Lease] = {}  # user id -> the lease of the current window

    async def wait(self, user_id: int, throttle: ClassifyRateThrottle) -> float | None:
        """Seconds to wait if this request is over the user's rate, else None (it is counted)."""
        key, window_end = throttle.window_key(user_id)
        while True:
            lease = self._lease(user_id, key, window_end)
            if lease.slots > 0:
                lease.slots -= 1
                return None
            if lease.exhausted:
                return max(0.0, window_end - time.time())
            if lease.pending is not None:
                await asyncio.shield(lease.pending)
                continue
            await self._reserve(lease, throttle)

    def refused(self, user_id: int) -> float | None:
        """The seconds left in the current window if this process has learnt that the user is over the rate in
        it, else None: under a flood most requests are such, and this answers them without a throttle, a key or
        Redis."""
        lease = self._leases.get(user_id)
        if lease is None or not lease.exhausted:
            return None
        left = lease.window_end - time.time()
        return left if left > 0 else None

    def _lease(self, user_id: int, key: str, window_end: float) -> _Lease:
        lease = self._leases.get(user_id)
        if lease is None or lease.window != key:
            if len(self._leases) > 10_000:  # old windows of users gone quiet
                self._leases = {u: v for u, v in self._leases.items() if v.pending is not None}
            lease = self._leases[user_id] = _Lease(key, window_end)
        return lease

    async def _reserve(self, lease: _Lease, throttle: ClassifyRateThrottle) -> None:
        limit = throttle.num_requests
        size = max(1, min(LEASE_MAX, (limit - lease.seen) // LEASE_SHARE))
        lease.pending = asyncio.get_running_loop().create_future()
        try:
            count = await self._incrby(lease.window, size, throttle.duration + 1)
        finally:
            lease.pending.set_result(None)
            lease.pending = None
        granted = max(0, min(size, limit - (count - size)))  # the reserved slots that lie within the rate
        lease.seen = max(lease.seen, count)
        lease.slots += granted
        lease.exhausted = granted == 0
