"""A job's state machine lives on the model: each change is one compare-and-set UPDATE, so of two processes
racing for the same change exactly one wins, and a finished job stays finished."""

from __future__ import annotations

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Job
from mlcore.config import ConfigError, DistillConfig, TrainConfig

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def _job(user, dataset, **fields) -> Job:
    return Job.objects.create(owner=user, kind="finetune", dataset=dataset, **{"params": {}, **fields})


def test_a_queued_job_is_claimed_by_one_worker_only(user, dataset):
    job = _job(user, dataset)
    assert Job.objects.claim(job.pk, "w1") is True
    assert Job.objects.claim(job.pk, "w2") is False
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == ("running", "w1", 1)
    assert job.started_at is not None and job.heartbeat_at == job.started_at


def test_two_deliveries_taking_over_the_same_orphan_cannot_both_win(user, dataset):
    job = _job(user, dataset, status="running", worker="gone", attempts=1)
    first, second = Job.objects.get(pk=job.pk), Job.objects.get(pk=job.pk)  # both saw attempt 1
    assert Job.objects.take_over(first, "w1") is True
    assert Job.objects.take_over(second, "w2") is False
    job.refresh_from_db()
    assert (job.worker, job.attempts) == ("w1", 2)


def test_only_a_running_job_finishes_and_a_cancel_is_not_undone(user, dataset):
    queued = _job(user, dataset)
    assert queued.finish(Job.Status.SUCCEEDED) is False and queued.status == "queued"

    running = _job(user, dataset, status="running", progress=0.4)
    assert running.finish(Job.Status.FAILED, error="x" * 6000) is True
    assert (running.status, len(running.error), running.progress, running.phase) == ("failed", 5000, 0.4, "")
    assert running.finish(Job.Status.SUCCEEDED) is False and running.status == "failed"

    done = _job(user, dataset, status="running", progress=0.4)
    assert done.finish(Job.Status.SUCCEEDED) is True and done.progress == 1.0 and done.finished_at is not None


def test_a_cancel_ends_a_queued_job_and_only_flags_a_running_one(user, dataset):
    queued = _job(user, dataset)
    assert queued.request_cancel() is True
    assert (queued.status, queued.cancel_requested) == ("cancelled", True) and queued.finished_at is not None

    running = _job(user, dataset, status="running")
    assert running.request_cancel() is False
    assert (running.status, running.cancel_requested) == ("running", True)
    assert running.finish(Job.Status.CANCELLED) is True and running.status == "cancelled"


def test_each_kind_has_its_queue_and_its_config(user, dataset, trained_model):
    finetune = _job(user, dataset, params={"epochs": 2})
    distill = Job(owner=user, kind="distill", dataset=dataset, params={"temperature": 2.0})
    classify = Job(owner=user, kind="classify", model=trained_model, params={})
    assert (finetune.lane, distill.lane, classify.lane) == ("gpu", "gpu", "cpu")
    assert (finetune.route(), distill.route(), classify.route()) == ("gpu", "gpu", "cpu")
    assert Job(kind="distill", params={"device": "cuda"}).route() == "cuda"
    assert Job(kind="finetune", params={"gpu_memory_gb": 30}).route() == "cuda-32g"
    assert Job.objects.get(pk=finetune.pk).queue == "gpu"  # stored when it was saved
    assert type(finetune.config) is TrainConfig and finetune.config.epochs == 2
    assert type(distill.config) is DistillConfig and distill.config.temperature == 2.0
    with pytest.raises(KeyError):
        classify.config  # noqa: B018  (a file classification has no hyperparameters)
    with pytest.raises(ConfigError, match="temperature"):
        Job(kind="finetune", params={"temperature": 2.0}).config  # noqa: B018  (not a fine-tune parameter)
