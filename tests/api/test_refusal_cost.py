"""A classify request over the rate costs next to nothing (jobs.api.fastpath, QuotaLeases.refused): once a web
process knows a user is over the rate in the current window, the fast path refuses their requests with no database
query, no Redis command, no parsing and no model. (`python -m bench.refusal_cost` measures the CPU it costs.)"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
import redis
from channels.testing import HttpCommunicator
from django.core.cache import cache
from django.db import connection
from django.db.backends.signals import connection_created
from django.test.utils import CaptureQueriesContext

from config.asgi import application
from jobs.api.throttles import ClassifyRateThrottle
from jobs.registry import services as registry
from jobs.serving import engines

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def database_work():
    """Queries run and connections opened, in this thread or any other (the fast path looks tokens up in a
    thread of the loop's executor, with a connection it opens and closes each time), while the block runs."""
    found = {"queries": 0, "connections": 0}

    def count(execute, sql, params, many, context):
        found["queries"] += 1
        return execute(sql, params, many, context)

    def opened(sender, connection, **kwargs):
        found["connections"] += 1
        connection.execute_wrappers.append(count)

    connection_created.connect(opened)
    try:
        with CaptureQueriesContext(connection) as here:
            yield found
    finally:
        connection_created.disconnect(opened)
    found["queries"] += len(here.captured_queries)


def _commands(client) -> int:
    """Commands the client's Redis has processed (so far: this INFO counts in the next one's answer)."""
    return client.info("stats")["total_commands_processed"]


async def _classify(token: str, body: bytes) -> tuple[int, dict, dict]:
    headers = [
        (b"host", b"testserver"), (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()), (b"authorization", f"Token {token}".encode()),
    ]  # fmt: skip
    communicator = HttpCommunicator(application, "POST", "/api/classify/", body=body, headers=headers)
    response = await communicator.get_response(timeout=30)
    await communicator.wait(timeout=30)
    return response["status"], json.loads(response["body"]), dict(response["headers"])


def test_a_request_over_the_rate_is_refused_without_the_database_redis_or_the_model(
    api, user, trained_model, own_redis, settings
):
    registry.promote(trained_model)  # not through the API, which would load the model in this process at once
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"classify": "100/day"}}
    settings.DISTILLERY_SERVING_AUTH_TTL = 3600  # the token stays remembered through the test, as under a flood
    throttle = ClassifyRateThrottle()
    cache.set(throttle.window_key(user.pk)[0].split(":", 2)[2], 100, 86_401)  # the day's 100 are used
    body = json.dumps({"text": "great good film"}).encode()

    async def refused_many() -> list:
        # Not even JSON: the refusal comes before the body is read, as in the DRF view.
        return [await _classify(api.token, b'{"text": "go') for _ in range(50)]

    counter = redis.Redis.from_url(own_redis.url)  # one connection: its handshake is not counted in between
    with database_work() as first_work:
        before = _commands(counter)
        first = asyncio.run(_classify(api.token, body))  # learns who the token is, and that the window is full
        first_commands = _commands(counter) - before
    with database_work() as work:
        before = _commands(counter)
        refused = asyncio.run(refused_many())
        commands = _commands(counter) - before
    counter.close()

    assert first[0] == 429 and int(first[2][b"retry-after"]) > 0
    # What the first refusal cost shows that the counters see such work: a token lookup, a reservation.
    assert first_work["queries"] >= 1 and first_commands >= 3, (first_work, first_commands)
    assert {r[0] for r in refused} == {429} and all("throttled" in r[1]["detail"] for r in refused)
    assert work == {"queries": 0, "connections": 0}
    assert commands == 1  # the first INFO: none of the 50 requests sent Redis anything
    assert engines.loaded() == []  # the promoted model was never loaded
