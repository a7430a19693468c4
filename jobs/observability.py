"""Prometheus metrics, each defined once: jobs by state, Celery queue depth, classify latency, serving batch sizes.

`distillery_jobs` and `distillery_queue_depth` are read when Prometheus scrapes (custom collectors: one GROUP BY
query, one passive declare per queue on the broker), so they are the same whichever web process answers; the two
histograms count what this process served. The web process runs one uvicorn process per container (Procfile,
compose, `make up`), so each web process is a scrape target of its own: no multiprocess mode. The workers are
watched through Flower's own `/metrics` (task events by state, runtimes, workers online), not an endpoint here.

Runs in: the web process (workers and Flower import it through jobs.serving.engines and the tasks; nothing there
fills or reads it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import Count
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from config import queues
from config.celery import app

from .models import Job

log = logging.getLogger(__name__)

# The web's /metrics reads this registry, not prometheus_client's default one: Flower, which imports the project's
# tasks and so this module, serves the default registry as its own /metrics, and a collector querying the database
# there would break it (Flower's handlers run on its event loop, where Django refuses queries).
REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):  # process_*, python_info, python_gc_*
    REGISTRY.register(_collector)

# Where a classify was answered: the ASGI fast path (token), the DRF view (session users, baseline serving), the
# classify page. Fixed values, so the label's cardinality is three.
FASTPATH, API, PAGE = "fastpath", "api", "page"

CLASSIFY_LATENCY = Histogram(
    "distillery_classify_latency_seconds",
    "Seconds from a classify request's validated texts to their predictions (queue wait, batching, the model), "
    "by where it was answered (fastpath, api, page)",
    ["path"],
    # A lone short text takes 2-5 ms; a full queue under load, hundreds of ms.
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
SERVING_BATCH_SIZE = Histogram(
    "distillery_serving_batch_size",
    "Texts in each forward pass of the micro-batching engine (DISTILLERY_SERVING_MAX_BATCH is the most gathered; "
    "one request's own texts can make more)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)


@contextmanager
def classify_timer(path: str) -> Iterator[None]:
    """Observe the block's duration in CLASSIFY_LATENCY under `path`, if it answers (a refusal is no latency)."""
    start = time.perf_counter()
    yield
    CLASSIFY_LATENCY.labels(path=path).observe(time.perf_counter() - start)


def observe_batch(size: int) -> None:
    """The engine's on_batch hook (mlcore.serving.BatchingEngine): called on its model thread per batch."""
    SERVING_BATCH_SIZE.observe(size)


class JobsCollector(Collector):
    """`distillery_jobs{state,kind}`: jobs in the database by state and kind, every pair present (0 when none),
    so a state that empties reads 0 instead of vanishing."""

    def describe(self):  # registering calls it instead of collect(): no query at import
        yield GaugeMetricFamily("distillery_jobs", "Jobs in the database by state and kind", labels=["state", "kind"])

    def collect(self):
        family = next(self.describe())
        counts = {
            (row["status"], row["kind"]): row["n"]
            for row in Job.objects.order_by().values("status", "kind").annotate(n=Count("id"))
        }
        for state in Job.Status.values:
            for kind in Job.Kind.values:
                family.add_metric([state, kind], counts.get((state, kind), 0))
        yield family


def queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue (config/queues.py), as the broker counts them.

    Kombu's passive declare answers the count its transport keeps: on Redis the lengths of the queue's list and of
    its priority lists (`<queue>\\x06\\x16<step>`), with any global key prefix, summed. Messages a worker has taken
    but not acknowledged are not waiting. An empty Redis list does not exist, which the declare reports as a
    missing queue: 0.
    """
    depths = {}
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)  # a scrape must not wait for the broker to come back
        channel = connection.default_channel
        for name in queues.every():
            try:
                depths[name] = channel.queue_declare(queue=name, passive=True).message_count
            except connection.channel_errors:
                depths[name] = 0
    return depths


class QueueDepthCollector(Collector):
    """`distillery_queue_depth{queue}`; with the broker unreachable the metric is left out (and logged) so the
    rest of the scrape still answers."""

    def describe(self):  # registering calls it instead of collect(): no broker at import
        yield GaugeMetricFamily(
            "distillery_queue_depth", "Messages waiting in each Celery queue on the broker", labels=["queue"]
        )

    def collect(self):
        family = next(self.describe())
        try:
            depths = queue_depths()
        except Exception as exc:  # the broker down must not take the jobs gauge and histograms with it
            log.warning("queue depth not read: %s", exc)
            return
        for name, depth in depths.items():
            family.add_metric([name], depth)
        yield family


JOBS = JobsCollector()
QUEUE_DEPTH = QueueDepthCollector()
REGISTRY.register(JOBS)
REGISTRY.register(QUEUE_DEPTH)
