"""A launched job goes to its queue and is announced on its owner's pages only once it is committed, so a
transaction that rolls back leaves neither a task nor a message behind: training jobs (create_job) and file
classifications (create_classify_job) alike. Observed on the real Celery publish signal and the real channel
layer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from celery.signals import after_task_publish
from channels.layers import get_channel_layer
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from jobs.datasets import services as dataset_services
from jobs.serving.batch import create_classify_job
from jobs.training import dispatch
from jobs.training.events import group_send, user_jobs_group
from jobs.training.launch import LaunchSpec, create_job
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def published():
    """(task name, task id, queue) of every task this process publishes."""
    sent = []

    def record(sender=None, headers=None, routing_key=None, **kwargs):
        sent.append((sender, headers["id"], routing_key))

    after_task_publish.connect(record, weak=False)
    yield sent
    after_task_publish.disconnect(record)


@pytest.fixture
def owners_pages(user):
    """What the owner's job lists hear: received() returns the messages sent to them so far, in order."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_jobs_group(user.pk), channel)

    def received() -> list[dict]:
        # A marker sent last comes back last: everything before it is what the pages heard, with no waiting.
        group_send(user_jobs_group(user.pk), {"type": "marker"})
        messages = []
        while not messages or messages[-1]["type"] != "marker":
            messages.append(async_to_sync(layer.receive)(channel)["event"])
        return messages[:-1]

    return received


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def _texts() -> SimpleUploadedFile:
    return SimpleUploadedFile("texts.csv", csv_bytes([("good film",), ("dull film",)], header=("text",)))


def test_a_training_job_is_sent_to_the_gpu_queue_and_announced_only_once_committed(
    user, dataset, fast_params, published, owners_pages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as on_commit:
        job = create_job(user, LaunchSpec(kind="finetune", dataset=dataset, params=fast_params))
    assert published == [] and owners_pages() == []

    for callback in on_commit:
        callback()
    assert published == [(dispatch.RUN_JOB, job.celery_task_id, "gpu")]
    status, queue = owners_pages()  # the job's status, then the places of the owner's queued jobs
    assert (status["type"], status["job"], status["status"]) == ("status", job.pk, "queued")
    place = {"job": job.pk, "kind": "finetune", "priority": 0, "position": 1}
    assert queue == {"type": "queue", "queue": "gpu", "jobs": [place]}


def test_a_file_classification_is_sent_to_the_cpu_queue_and_announced_only_once_committed(
    trained_model, published, owners_pages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as on_commit:
        job = create_classify_job(trained_model.owner, _texts(), model=trained_model)
    assert published == [] and owners_pages() == []

    for callback in on_commit:
        callback()
    assert published == [(dispatch.RUN_JOB, job.celery_task_id, "cpu")]
    status, queue = owners_pages()
    assert (status["type"], status["job"], status["kind"], status["status"]) == ("status", job.pk, "classify", "queued")
    place = {"job": job.pk, "kind": "classify", "priority": 0, "position": 1}
    assert queue == {"type": "queue", "queue": "cpu", "jobs": [place]}


def test_a_launch_rolled_back_leaves_no_task_and_no_message(
    user, dataset, fast_params, trained_model, published, owners_pages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            create_job(user, LaunchSpec(kind="finetune", dataset=dataset, params=fast_params))
            create_classify_job(user, _texts(), model=trained_model)
            raise RuntimeError("the caller's transaction fails after the launch")
    assert published == [] and owners_pages() == []
