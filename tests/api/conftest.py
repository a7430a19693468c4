"""Fixtures of the API tests: a Redis of a test's own, which it can kill and start again."""

from __future__ import annotations

import os
import runpy
import signal
from pathlib import Path

import pytest
from axes.handlers.proxy import AxesProxyHandler
from channels.layers import channel_layers

from config.celery import app as celery_app
from config.redis_pool import SharedConnectionPool
from jobs.api import fastpath

REPO = Path(__file__).resolve().parents[2]
EmbeddedRedis = runpy.run_path(str(REPO / "platform" / "embedded.py"))["EmbeddedRedis"]


class OwnRedis:
    """A redis-server of the test's own on one port, that can be killed and started again on that port."""

    def __init__(self, folder: Path) -> None:
        self.server = EmbeddedRedis(folder)
        self.url = self.server.start()

    def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to its clients."""
        proc = self.server.proc
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher starts it in a process group of its own
        proc.wait()
        self.server.proc = None

    def start(self) -> None:
        self.server.start()  # the same port: its data is gone, as after a restart without persistence

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
def own_redis(settings, tmp_path, monkeypatch):
    """REDIS_URL, the cache, the Channels layer and the Celery broker pointed at a Redis of this test's own."""
    redis = OwnRedis(tmp_path / "redis")
    settings.REDIS_URL = redis.url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": redis.url}}
    layer = settings.CHANNEL_LAYERS["default"]
    hosts = [{**host, "address": redis.url} for host in layer["CONFIG"]["hosts"]]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": hosts}}}
    channel_layers.backends.clear()
    monkeypatch.setattr(AxesProxyHandler, "implementation", None)  # it keeps the cache it was made with
    # Celery's producer pools, made on first use from broker_url: new ones for this Redis, the session's after.
    saved = celery_app.conf["broker_url"], celery_app._pool, celery_app.amqp._producer_pool
    celery_app.conf["broker_url"], celery_app._pool, celery_app.amqp._producer_pool = redis.url, None, None
    fastpath.reset_leases()
    try:
        yield redis
    finally:
        for pool in (celery_app.amqp._producer_pool, celery_app._pool):
            if pool is not None:
                pool.force_close_all()
        celery_app.conf["broker_url"], celery_app._pool, celery_app.amqp._producer_pool = saved
        redis.server.stop()
        SharedConnectionPool.forget(redis.url)
        fastpath.reset_leases()
        channel_layers.backends.clear()
