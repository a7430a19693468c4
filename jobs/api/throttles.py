"""The classify throttle, shared by the DRF view and the ASGI fast path (jobs.fastpath)."""

from __future__ import annotations

import functools
import time

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
        key, window_end = self.window_key(request.user.pk)
        raw = key.split(":", 2)[2]  # cache.add/incr apply the prefix and version themselves
        cache.add(raw, 0, self.duration + 1)
        count = cache.incr(raw)
        self._wait = window_end - time.time()
        return count <= self.num_requests

    def wait(self) -> float:
        return max(self._wait, 0.0)
