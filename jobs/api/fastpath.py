"""The hot path: `POST /api/classify/` with an API token, answered in the ASGI layer, before Django.

Measured under load (make bench-serve), the DRF view spent about 10 ms of interpreter time per request in
middleware, request parsing, a worker-thread hop for authentication and throttling, and rendering, so 32
clients were held to about 90 requests/s while the model sat mostly idle. This path does the same work in
about a tenth of that, on the event loop, with the same contract:

- the API token is checked against the database, then remembered for DISTILLERY_SERVING_AUTH_TTL seconds
  (deleting a token or changing a user or model record forgets it at once in this process);
- the per-user throttle is the one the DRF view uses (ClassifyRateThrottle: a fixed window counted in Redis,
  shared by every web process), reserved here in blocks (QuotaLeases), so most requests make no round trip;
- the body is validated by the same serializer as the view (a plain `{"text": "..."}` is checked inline);
- answers and error bodies are the view's: `{"detail": ...}` for 401, 404, 429, 503, field errors for 400;
- Redis unreachable is a 503 with Retry-After (jobs/outages.py), as the view answers it.

Anything else (session-authenticated browsers, other methods, a body that says it is not JSON, baseline
serving) goes to Django unchanged; the view reads JSON only too, so both paths answer a form with a 415.

Runs in: the web process (config/asgi.py puts it in front of Django).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http.request import split_domain_port, validate_host

from config.redis_pool import COMMAND_TIMEOUT_S, CONNECT_TIMEOUT_S, UNREACHABLE, retry_once

from .. import accounts, observability, outages
from ..registry.services import promoted_model
from ..serving.classify import Unavailable, answers, classify_texts
from .parsers import MAX_DEPTH, check_depth
from .serializers import ClassifyRequestSerializer
from .throttles import ClassifyRateThrottle, QuotaLeases

log = logging.getLogger(__name__)

PATH = "/api/classify/"
REDIS_POOL_SIZE = 16  # connections per process for throttle reservations (most requests need none)
_auth: dict[str, tuple[float, Any]] = {}  # token key -> (expiry, (user_id, ModelRecord | None))
_redis: dict[asyncio.AbstractEventLoop, Any] = {}
_leases = None  # QuotaLeases of this process, made on first use


class ClassifyFastPath:
    """ASGI middleware: serves token-authenticated classify requests, hands everything else to `app`."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or settings.DISTILLERY_SERVING_ENGINE != "batched"
        ):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").split()
        if len(authorization) != 2 or authorization[0].lower() != b"token":
            return await self.app(scope, receive, send)  # session auth, CSRF and friends: Django's job
        if not _maybe_json(headers.get(b"content-type", b"")):
            return await self.app(scope, receive, send)  # DRF's 415, with the media types it reads
        status, body, extra = await _answer(scope, headers, authorization[1].decode("latin-1"), receive)
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"vary", b"Accept, Authorization"),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


def _maybe_json(content_type: bytes) -> bool:
    """Whether a body of this Content-Type is read here: JSON, or none said (read as JSON, as before)."""
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type in (b"", b"application/json")


def _json(status: int, payload, *extra) -> tuple[int, bytes, list]:
    return status, json.dumps(payload, separators=(",", ":")).encode(), list(extra)


async def _answer(scope, headers: dict, token: str, receive) -> tuple[int, bytes, list]:
    host = headers.get(b"host", b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return _json(400, {"detail": "bad request: the Host header is not allowed"})
    # Who and whether within the rate come first, as in the DRF view: a refused request costs a dict lookup or
    # two (its token remembered, its user known to be over the rate until the window ends), no body read.
    who = await _who(token)
    if who is None:
        return _json(401, {"detail": "Invalid token."}, (b"www-authenticate", b"Token"))
    user_id, record = who
    try:
        wait = await _throttle_wait(user_id)
    except UNREACHABLE as e:  # fail closed: the rate cannot be counted (jobs/outages.py)
        outages.log_outage("classify (fast path)", e)
        return _json(503, {"detail": outages.DETAIL}, (b"retry-after", str(outages.RETRY_AFTER_S).encode()))
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        return _json(
            429,
            {"detail": f"Request was throttled. Expected available in {seconds} second{'s' if seconds != 1 else ''}."},
            (b"retry-after", str(seconds).encode()),
        )

    body = await _read_body(receive, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if body is None:
        return _json(413, {"detail": "the request body is too large"})
    try:
        data = check_depth(json.loads(body)) if body else {}
    except RecursionError:
        return _json(400, {"detail": f"JSON parse error - the body is nested more than {MAX_DEPTH} levels deep"})
    except (ValueError, UnicodeDecodeError) as e:  # TooDeep is a ValueError
        return _json(400, {"detail": f"JSON parse error - {e}"})
    texts, single, errors = _validate(data)
    if errors is not None:
        return _json(400, errors)
    if record is None:
        return _json(404, {"detail": "no promoted model: promote one with POST /api/models/{id}/promote/"})

    try:
        predictions = await classify_texts(record, texts, observability.FASTPATH)
    except Unavailable as e:  # the engine is full or being replaced
        return _json(503, {"detail": str(e)})
    body = answers(record, predictions)
    return _json(200, body[0] if single else body)


async def _read_body(receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _validate(data) -> tuple[list[str], bool, Any]:
    """(texts, whether one text was sent, None) or ([], False, the serializer's errors)."""
    if isinstance(data, dict) and len(data) == 1:
        text = data.get("text")
        if isinstance(text, str) and text.strip() and len(text) <= 100_000:
            return [text], True, None  # the common case, checked as the serializer would
    payload = ClassifyRequestSerializer(data=data)
    if not payload.is_valid():
        return [], False, payload.errors
    single = "text" in payload.validated_data
    return payload.validated_data.get("texts") or [payload.validated_data["text"]], single, None


async def _who(token: str):
    """(user id, promoted ModelRecord or None) for a valid token of an active user, else None."""
    now = time.monotonic()
    cached = _auth.get(token)
    if cached is not None and cached[0] > now:
        return cached[1]
    who = await sync_to_async(_lookup, thread_sensitive=False)(token)
    if who is not None:
        if len(_auth) > 10_000:
            _auth.clear()
        _auth[token] = (now + settings.DISTILLERY_SERVING_AUTH_TTL, who)
    return who


def _lookup(token: str):
    # A thread of the loop's default executor: its connection is closed after use rather than left open in a
    # thread-local (lookups happen once per token per TTL, so reconnecting costs little).
    try:
        user = accounts.user_for_token(token)
        return None if user is None else (user.pk, promoted_model(user))
    finally:
        connections.close_all()


def forget(user_id: int | None = None) -> None:
    """Drop remembered tokens (of one user, or all): called when tokens, users or model records change."""
    if user_id is None:
        _auth.clear()
        return
    for key, (_, who) in list(_auth.items()):
        if who[0] == user_id:
            _auth.pop(key, None)


async def _throttle_wait(user_id: int) -> float | None:
    """Seconds to wait if this request is over the user's classify rate, else None (and it is counted)."""
    global _leases
    if _leases is not None:
        wait = _leases.refused(user_id)  # over the rate in this window already: no throttle to build, no Redis
        if wait is not None:
            return wait
    throttle = ClassifyRateThrottle()
    if throttle.num_requests is None:
        return None
    if _leases is None:
        _leases = QuotaLeases(_incrby)
    return await _leases.wait(user_id, throttle)


async def _incrby(key: str, amount: int, ttl: int) -> int:
    pipe = _redis_client().pipeline(transaction=False)
    pipe.incrby(key, amount)
    pipe.expire(key, ttl)
    count, _ = await pipe.execute()
    return count


def reset_leases() -> None:
    """Forget the quota this process has reserved (tests: each starts from an empty Redis)."""
    global _leases
    _leases = None


def _redis_client():
    """An asyncio Redis client for the running event loop (a client's connections belong to one loop).

    Its pool blocks when all REDIS_POOL_SIZE connections are busy: the default pool raises "Too many
    connections" instead, which a burst of new users' first requests could reach. A connection Redis dropped (a
    restart) is replaced on the spot (config/redis_pool.retry_once), so the first request after it is answered.
    """
    loop = asyncio.get_running_loop()
    client = _redis.get(loop)
    if client is None:
        for old in [lp for lp in _redis if lp.is_closed()]:
            _redis.pop(old, None)
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=REDIS_POOL_SIZE,
            timeout=10,
            retry=retry_once(for_asyncio=True),
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
        )
        client = _redis[loop] = redis.asyncio.Redis.from_pool(pool)
    return client
