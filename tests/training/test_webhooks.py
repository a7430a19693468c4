"""A job with a webhook_url POSTs its final status there when it ends; the Celery task retries while the
receiver is unavailable and stops at its answer. Receivers here are real HTTP servers on loopback, allowed as an
on-premises operator would (DISTILLERY_WEBHOOK_ALLOW_PRIVATE, also set for the test worker in tests/conftest.py);
where webhooks may go is test_webhook_targets.py's, how they are signed test_webhook_signature.py's."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import pytest

from jobs import accounts, tasks
from jobs.models import Job
from jobs.training import launch, lifecycle, webhooks
from tests.conftest import watch_job


@pytest.fixture(autouse=True)
def _private_receivers(settings):
    settings.DISTILLERY_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def finished(user, trained_model, receiver):
    job = trained_model.produced_by
    Job.objects.filter(pk=job.pk).update(webhook_url=receiver.url)
    job.refresh_from_db()
    return job


@pytest.mark.django_db
def test_a_5xx_or_no_server_is_retried_and_a_4xx_is_final(finished, receiver):
    receiver.statuses = [503, 502]
    result = tasks.notify_webhook.apply(args=(finished.pk,))  # eager: Celery's retries run in place
    assert result.get() == 200 and len(receiver.requests) == 3

    receiver.statuses = [404]
    assert webhooks.post(finished.pk) == 404 and len(receiver.requests) == 4
    Job.objects.filter(pk=finished.pk).update(webhook_url="http://127.0.0.1:9/nobody")  # discard port
    with pytest.raises(webhooks.WebhookUnavailable):
        webhooks.post(finished.pk)
    assert tasks.notify_webhook.max_retries == 6
    assert tasks.notify_webhook.autoretry_for == (webhooks.WebhookUnavailable,)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_worker_posts_when_the_job_ends_signed(
    api, user, sentiment_csv, tiny_bert, fast_params, celery_worker, receiver
):
    dataset = api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()
    payload = {"kind": "finetune", "dataset": dataset["id"], "base_model": str(tiny_bert), "params": fast_params,
               "webhook_url": receiver.url}  # fmt: skip
    job = api.post("/api/jobs/", payload, format="json").json()
    assert job["webhook_url"] == receiver.url

    final = asyncio.run(watch_job(job["id"], api.token, timeout=240))[-1]

    assert final["status"] == "succeeded", final["error"]
    assert receiver.arrived.wait(60), "no webhook POST arrived"
    headers, body = receiver.requests[0]
    event = json.loads(body)
    assert (event["job"], event["status"], event["result_model"]) == (job["id"], "succeeded", final["result_model"])
    signed = f"{headers['X-Distillery-Timestamp']}.".encode() + body
    key = accounts.webhook_secret(user).secret.encode()  # the one the worker made and signed with
    assert headers["X-Distillery-Signature"] == "sha256=" + hmac.new(key, signed, hashlib.sha256).hexdigest()


@pytest.mark.django_db
def test_each_end_is_announced_once_whoever_ends_the_job(
    user, trained_model, receiver, django_capture_on_commit_callbacks
):
    queued = Job.objects.create(owner=user, kind="finetune", dataset=trained_model.dataset, params={},
                                webhook_url=receiver.url)  # fmt: skip
    with django_capture_on_commit_callbacks() as callbacks:
        launch.request_cancel(queued)  # a queued job ends at once
        lifecycle.finish_job(queued, Job.Status.FAILED, error="late")  # too late: it changes nothing
    assert len(callbacks) == 1 and Job.objects.get(pk=queued.pk).status == "cancelled"
    silent = Job.objects.create(owner=user, kind="finetune", dataset=trained_model.dataset, params={})
    with django_capture_on_commit_callbacks() as callbacks:
        launch.request_cancel(silent)
    assert callbacks == []  # no webhook, nothing to send


@pytest.mark.django_db
def test_the_launch_form_takes_a_webhook(logged_in, trained_model, receiver):
    form = {
        "kind": "finetune", "dataset": trained_model.dataset_id, "base_model": "all-MiniLM-L6-v2", "batch_size": "16",
        "learning_rate": "2e-5", "epochs": "1", "max_length": "64", "seed": "1, 2", "truncation": "head",
        "scheduler": "exponential", "warmup_ratio": "0", "weight_decay": "0", "webhook_url": receiver.url,
    }  # fmt: skip
    assert logged_in.post("/jobs/new/", form).status_code == 302  # two seeds: a sweep
    assert set(Job.objects.filter(sweep__isnull=False).values_list("webhook_url", flat=True)) == {receiver.url}
