"""The fast path's throttle reserves a user's quota from Redis in blocks (jobs.api.throttles.QuotaLeases): it
must still serve exactly the rate, across processes and concurrent requests, with far fewer round trips."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio
from django.conf import settings as django_settings

from jobs.api import fastpath
from jobs.api.throttles import LEASE_MAX, ClassifyRateThrottle, QuotaLeases

_users = itertools.count(10_000_000)  # ids no test user has, so Redis counts of other tests never mix in


def _fresh_user() -> int:
    """The next unused user id with its day's count cleared: the windows outlive a test run, and the ids come
    again in the next run against the same Redis."""
    import redis as sync_redis

    uid = next(_users)
    throttle = ClassifyRateThrottle()
    throttle.duration = 86_400  # the day-long window the tests set
    with sync_redis.Redis.from_url(django_settings.REDIS_URL) as client:
        client.delete(throttle.window_key(uid)[0])
    return uid


@pytest.fixture
def rate(settings):
    """A rate of 100 requests per user and day."""
    # A day's window: a test never straddles two (it would be let through twice).
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"classify": "100/day"}}
    return 100


class CountingRedis:
    """The fast path's own INCRBY + EXPIRE (its client and connection pool) on the real Redis, counting the
    round trips."""

    def __init__(self, client) -> None:
        self.client = client
        self.trips = 0

    async def incrby(self, key: str, amount: int, ttl: int) -> int:
        self.trips += 1
        return await fastpath._incrby(key, amount, ttl)


def _run(coro_fn):
    async def go():
        client = redis.asyncio.Redis.from_url(django_settings.REDIS_URL)
        try:
            return await coro_fn(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_one_process_serves_exactly_the_rate_in_few_round_trips(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"classify": "1000/day"}}
    user = _fresh_user()

    async def go(client):
        redis_ = CountingRedis(client)
        leases = QuotaLeases(redis_.incrby)
        waits = [await leases.wait(user, ClassifyRateThrottle()) for _ in range(1000)]
        trips = redis_.trips
        waits += [await leases.wait(user, ClassifyRateThrottle()) for _ in range(10)]
        return waits, trips, int(await client.get(ClassifyRateThrottle().window_key(user)[0]))

    waits, trips, count = _run(go)
    assert [w is None for w in waits] == [True] * 1000 + [False] * 10
    assert all(0 < w <= 86_400 for w in waits[1000:])
    # Blocks of LEASE_MAX while much is left (about 23 trips for the first 750), then ever smaller ones,
    # one request at a time for the last 15: about 60 round trips instead of 1000.
    assert LEASE_MAX == 32 and 40 <= trips <= 80, trips
    assert count == 1001  # one slot at a time at the end; the first refusal learnt the window is full


def test_processes_and_concurrent_requests_share_one_rate(rate):
    user = _fresh_user()

    async def go(client):
        redis_ = CountingRedis(client)
        processes = [QuotaLeases(redis_.incrby) for _ in range(3)]
        # 3 web processes, 60 concurrent requests each, all at once on one loop.
        waits = await asyncio.gather(*(p.wait(user, ClassifyRateThrottle()) for p in processes for _ in range(60)))
        return waits, redis_.trips

    waits, trips = _run(go)
    assert sum(w is None for w in waits) == rate
    assert trips < 60, trips  # one reservation per user and process in flight; waiting requests share it


def test_the_drf_view_and_the_fast_path_count_in_the_same_window(rate, db):
    from django.core.cache import cache

    user = _fresh_user()
    throttle = ClassifyRateThrottle()
    key = throttle.window_key(user)[0]
    cache.set(key.split(":", 2)[2], rate - 3, 86_401)  # the DRF view has counted 97 requests

    async def go(client):
        leases = QuotaLeases(CountingRedis(client).incrby)
        return [await leases.wait(user, ClassifyRateThrottle()) for _ in range(5)]

    assert [w is None for w in _run(go)] == [True, True, True, False, False]
