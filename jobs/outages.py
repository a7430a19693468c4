"""Redis unreachable: a 503 that says so and when to come back, never a 500.

Redis holds the classify rate's windows (the cache), the Celery queues (the broker) and the Channels layer. While
it is down a request that needs it cannot be answered truthfully, so it is refused: classify fails closed (the
rate is the only bound on one user's share of the model; serving unthrottled would let one client take every
web process's model thread), a launch creates nothing (jobs.training.dispatch.check_reachable), a login answers
503 (django-axes cannot count failures). Requests that need no Redis (pages, lists, downloads: sessions live in
the database) are answered as usual, and so is classify quota a web process reserved before the outage. Pools
recover by themselves once Redis is back (config/redis_pool.py).

Runs in: the web process (the middleware is in settings.MIDDLEWARE; the fast path and the consumers use the
answer's parts).
"""

from __future__ import annotations

import logging
import time

from django.http import HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from kombu.exceptions import OperationalError

from config.redis_pool import UNREACHABLE

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5  # what a 503 tells the client to wait (Retry-After); pools reconnect on the next request
DETAIL = "temporarily unavailable: the server cannot reach Redis; retry shortly"
# Redis's own clients' errors, and the one Celery raises when its broker (Redis) cannot be reached.
UNAVAILABLE = (*UNREACHABLE, OperationalError)
_last_logged = [0.0]  # monotonic time of the last warning: one per RETRY_AFTER_S, not one per refused request


def log_outage(where: str, exception: BaseException) -> None:
    """Warn that Redis is unreachable, at most once every RETRY_AFTER_S seconds in this process (a flood of
    refused requests would otherwise write a line each)."""
    now = time.monotonic()
    if now - _last_logged[0] >= RETRY_AFTER_S:
        _last_logged[0] = now
        log.warning("%s: Redis unreachable (%s); answering 503 until it is back", where, exception)


class RedisOutageMiddleware(MiddlewareMixin):
    """Django middleware: a view that raised because Redis (cache, broker, Channels layer) cannot be reached gets a
    503 with Retry-After: `{"detail": ...}` under /api/ (as every API refusal), a short page elsewhere. It has only
    process_exception, so a request that works passes through without a thread hop, sync or async."""

    def process_exception(self, request, exception):
        if not isinstance(exception, UNAVAILABLE):
            return None
        log_outage(f"{request.method} {request.path}", exception)
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": DETAIL}, status=503)
        else:
            response = HttpResponse(f"Distillery is {DETAIL}.\n", status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
