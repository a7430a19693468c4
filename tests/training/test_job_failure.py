"""A job that cannot run ends "failed" with a readable error and registers no model."""

from __future__ import annotations

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Job, ModelRecord
from jobs.training import launch, lifecycle, runner
from jobs.training.launch import LaunchSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def _claim_and_run(job: Job) -> Job:
    claimed = lifecycle.claim_job(job.pk, worker="test")
    assert claimed is not None
    runner.execute(claimed)
    job.refresh_from_db()
    return job


def test_a_hub_model_that_cannot_be_loaded_fails_the_job_with_its_name(user, dataset, monkeypatch, fake_hub):
    fake_hub.models.add("no-such-org/no-such-model")  # the hub has it at launch (offline it is a 400 at once)
    job = launch.create_job(user, LaunchSpec(kind="finetune", dataset=dataset, base_model="no-such-org/no-such-model"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # then the hub is gone when the worker runs it: fail, not time out
    job = _claim_and_run(job)
    assert job.status == "failed"
    # huggingface_hub reads HF_HUB_OFFLINE once, when first imported: offline, or online without a network.
    assert job.error in (
        "Base model 'no-such-org/no-such-model' could not be loaded: not found on this server, and it does not use "
        "the Hugging Face Hub (HF_HUB_OFFLINE)",
        "Base model 'no-such-org/no-such-model' could not be loaded: the Hugging Face Hub could not be reached from "
        "this server",
    )
    assert "Traceback (most recent call last)" in job.error_detail  # the chain of causes, for staff
    assert "ModelLoadError: could not load model 'no-such-org/no-such-model'" in job.error_detail
    assert job.result_model is None and ModelRecord.objects.count() == 0


def test_a_job_is_claimed_once(user, dataset):
    job = launch.create_job(user, LaunchSpec(kind="finetune", dataset=dataset))
    assert lifecycle.claim_job(job.pk, worker="a") is not None
    assert lifecycle.claim_job(job.pk, worker="b") is None  # a duplicate delivery while "a" is alive
    job.refresh_from_db()
    assert (job.status, job.worker) == ("running", "a")


def test_a_job_cancelled_while_queued_is_not_run(user, dataset):
    job = launch.create_job(user, LaunchSpec(kind="finetune", dataset=dataset))
    launch.request_cancel(job)
    assert lifecycle.claim_job(job.pk, worker="a") is None
    job.refresh_from_db()
    assert job.status == "cancelled" and job.started_at is None


def test_a_job_that_keeps_losing_its_worker_fails_with_a_clear_message(user, sentiment_csv, settings):
    dataset = dataset_services.create_dataset(user, "d", sentiment_csv)
    job = launch.create_job(user, LaunchSpec(kind="finetune", dataset=dataset))
    assert lifecycle.claim_job(job.pk, worker="w1") is not None
    assert lifecycle.claim_job(job.pk, worker="alive") is None  # a plain duplicate never takes a running job
    for attempt in range(2, settings.DISTILLERY_MAX_ATTEMPTS + 1):  # each redelivery takes the job over
        assert lifecycle.claim_job(job.pk, worker=f"w{attempt}", redelivered=True) is not None
    assert lifecycle.claim_job(job.pk, worker="last", redelivered=True) is None
    job.refresh_from_db()
    assert job.status == "failed"
    assert f"stopped before it finished, {settings.DISTILLERY_MAX_ATTEMPTS} times" in job.error
