"""GET /metrics (jobs.observability, jobs.views.metrics): scraped through the ASGI application, it counts the real
classify requests each path answered and the texts of each batch, the real job rows by state and kind, and the
messages really waiting in Redis; without the bearer token nobody reads it, signed in or not."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import prometheus_client
import pytest
import redis
from channels.testing import HttpCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from prometheus_client.parser import text_string_to_metric_families

from config import queues
from config.asgi import application
from config.celery import app as celery_app
from jobs.datasets import services as dataset_services
from jobs.models import Job
from jobs.training.dispatch import RUN_JOB
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "scrape-secret-1234"


@pytest.fixture
def metrics_on(settings):
    settings.DISTILLERY_METRICS_TOKEN = TOKEN


def _request(method: str, path: str, headers: dict[bytes, bytes], body: bytes = b"") -> tuple[int, bytes, dict]:
    headers = {b"host": b"testserver", **headers}
    if body:
        headers[b"content-length"] = str(len(body)).encode()

    async def go():
        communicator = HttpCommunicator(application, method, path, body=body, headers=list(headers.items()))
        response = await communicator.get_response(timeout=30)
        await communicator.wait(timeout=30)  # let Django close its connection in the request's thread
        return response

    response = asyncio.run(go())
    return response["status"], response["body"], {k.lower(): v for k, v in response["headers"]}


def scrape(token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    """Every sample of GET /metrics: (name, sorted labels) -> value."""
    status, body, headers = _request("GET", "/metrics", {b"authorization": f"Bearer {token}".encode()})
    assert status == 200, body
    assert headers[b"content-type"].startswith(b"text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _classify_fast(token: str, payload: dict) -> int:
    body = json.dumps(payload).encode()
    headers = {b"content-type": b"application/json", b"authorization": f"Token {token}".encode()}
    return _request("POST", "/api/classify/", headers, body)[0]


@pytest.fixture
def promoted(api, trained_model):
    assert api.post(f"/api/models/{trained_model.pk}/promote/").status_code == 200
    return trained_model


def test_metrics_are_off_without_a_token_setting(settings, api, admin_client):
    settings.DISTILLERY_METRICS_TOKEN = ""
    assert _request("GET", "/metrics", {})[0] == 404
    assert _request("GET", "/metrics", {b"authorization": b"Bearer "})[0] == 404
    assert admin_client.get("/metrics").status_code == 404  # staff too: off is off


def test_only_the_bearer_token_opens_metrics(metrics_on, api, admin_client):
    assert _request("GET", "/metrics", {})[0] == 401  # anonymous
    status, _, headers = _request("GET", "/metrics", {b"authorization": f"Token {api.token}".encode()})
    assert status == 401 and headers[b"www-authenticate"] == b'Bearer realm="metrics"'  # a user's API token
    assert admin_client.get("/metrics").status_code == 401  # a staff session
    assert _request("GET", "/metrics", {b"authorization": b"Bearer scrape-secret-123"})[0] == 401  # a prefix
    assert _request("GET", "/metrics", {b"authorization": f"Basic {TOKEN}".encode()})[0] == 401
    # A POST never reaches the view: CSRF refuses it first (and the view takes GET only).
    assert _request("POST", "/metrics", {b"authorization": f"Bearer {TOKEN}".encode()})[0] == 403
    assert ("distillery_jobs", (("kind", "finetune"), ("state", "queued"))) in scrape()


def test_classify_latency_and_batch_sizes_count_the_requests_answered(metrics_on, api, promoted, client, user):
    fast = ("distillery_classify_latency_seconds_count", (("path", "fastpath"),))
    view = ("distillery_classify_latency_seconds_count", (("path", "api"),))
    page = ("distillery_classify_latency_seconds_count", (("path", "page"),))
    batches = ("distillery_serving_batch_size_count", ())
    texts = ("distillery_serving_batch_size_sum", ())
    before = scrape()

    for payload in ({"text": "great good film"}, {"texts": ["awful", "bad", "great"]}, {"text": "fine"}):
        assert _classify_fast(api.token, payload) == 200
    assert _classify_fast(api.token, {"text": ""}) == 400  # refused: no latency, no batch
    for payload in ({"texts": ["good", "bad"]}, {"text": "ok"}):
        assert api.post("/api/classify/", payload, format="json").status_code == 200  # the DRF view
    client.force_login(user)
    assert client.post("/classify/", {"text": "good film"}).status_code == 200  # the classify page

    after = scrape()
    assert after[fast] - before.get(fast, 0) == 3
    assert after[view] - before.get(view, 0) == 2
    assert after[page] - before.get(page, 0) == 1
    # Requests one at a time: each is a batch of its own, and every text is in exactly one batch.
    assert after[batches] - before.get(batches, 0) == 6
    assert after[texts] - before.get(texts, 0) == 1 + 3 + 1 + 2 + 1 + 1
    bucket = ("distillery_serving_batch_size_bucket", (("le", "1.0"),))
    assert after[bucket] - before.get(bucket, 0) == 4  # the four single-text requests


def test_the_jobs_gauge_is_the_rows_by_state_and_kind(metrics_on, user):
    upload = SimpleUploadedFile("a.csv", csv_bytes([("good", "pos"), ("bad", "neg")]))
    dataset = dataset_services.create_dataset(user, "d", upload)
    made = {
        ("queued", "finetune"): 3, ("running", "finetune"): 1, ("failed", "distill"): 2, ("succeeded", "classify"): 1,
    }  # fmt: skip
    for (state, kind), n in made.items():
        for _ in range(n):
            Job.objects.create(owner=user, kind=kind, dataset=dataset, params={}, status=state)

    samples = scrape()
    gauge = {labels: v for (name, labels), v in samples.items() if name == "distillery_jobs"}
    assert len(gauge) == len(Job.Status.values) * len(Job.Kind.values)  # every pair, zeros included
    for state in Job.Status.values:
        for kind in Job.Kind.values:
            rows = Job.objects.filter(status=state, kind=kind).count()
            assert gauge[(("kind", kind), ("state", state))] == rows == made.get((state, kind), 0)


def test_queue_depth_is_what_waits_in_redis(metrics_on, own_redis):
    # Nothing consumes this Redis: what is sent stays. Priorities split a queue into lists (kombu's naming).
    for priority in (0, 0, 5):
        celery_app.send_task(RUN_JOB, args=(0,), queue=queues.GPU, priority=priority)
    celery_app.send_task(RUN_JOB, args=(0,), queue=queues.CPU)
    client = redis.Redis.from_url(own_redis.url)
    assert client.llen(queues.GPU) == 2  # the third sits in a priority list of its own

    samples = scrape()
    assert samples[("distillery_queue_depth", (("queue", queues.GPU),))] == 3
    assert samples[("distillery_queue_depth", (("queue", queues.CPU),))] == 1

    client.delete(queues.CPU)
    assert scrape()[("distillery_queue_depth", (("queue", queues.CPU),))] == 0  # emptied: 0, still reported


def test_the_scrape_answers_with_the_broker_down(metrics_on, own_redis):
    own_redis.kill()
    samples = scrape()
    assert not any(name == "distillery_queue_depth" for name, _ in samples)
    assert any(name == "distillery_jobs" for name, _ in samples)


def test_the_default_registry_flower_serves_is_left_alone():
    # Flower imports the tasks (so jobs.observability) and serves prometheus_client's default registry as its
    # /metrics on its event loop, where a database query would fail the whole scrape.
    import jobs.observability  # noqa: F401

    exposed = prometheus_client.generate_latest().decode()
    assert "distillery_" not in exposed


def test_the_readme_names_each_metric_and_its_labels(metrics_on):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in readme.splitlines() if line.startswith("| `distillery_")}
    status, body, _ = _request("GET", "/metrics", {b"authorization": f"Bearer {TOKEN}".encode()})
    assert status == 200
    families = [
        f for f in text_string_to_metric_families(body.decode())
        if f.name.startswith("distillery_") and not f.name.endswith("_created")  # the client's creation times
    ]  # fmt: skip
    assert {f.name for f in families} == set(rows) == {
        "distillery_jobs", "distillery_queue_depth", "distillery_classify_latency_seconds",
        "distillery_serving_batch_size",
    }  # fmt: skip
    for family in families:
        labels = {name for sample in family.samples for name in sample.labels} - {"le"}
        assert all(f"`{label}`" in rows[family.name] for label in labels), family.name
