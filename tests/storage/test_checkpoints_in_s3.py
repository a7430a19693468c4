"""With object storage, a run's checkpoint goes to the bucket after each write, so that a run on another host
(another DISTILLERY_CHECKPOINT_DIR, empty) resumes from it; the stored checkpoints go when the job ends."""

from __future__ import annotations

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import services as dataset_services
from jobs.files import adopt_run_dir
from jobs.models import Job
from jobs.training import checkpoint_mirror, lifecycle
from jobs.training.callback import job_callback
from mlcore import checkpoint
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db

IDENTITY = {"kind": "finetune", "source": "tiny", "data": "0" * 64, "config": {"learning_rate": 5e-5}}


@pytest.fixture
def job(user):
    upload = SimpleUploadedFile("a.csv", csv_bytes([("good", "pos"), ("bad", "neg")]))
    dataset = dataset_services.create_dataset(user, "d", upload)
    return Job.objects.create(
        owner=user, kind="finetune", dataset=dataset, params={}, status="running", attempts=1
    )


def _write_checkpoint(workdir, step: int):
    """What mlcore's training loop does at a checkpoint: the state written atomically in the run's folder."""
    saver = checkpoint.Checkpoints(workdir / "checkpoint", every=10, identity=IDENTITY)
    return saver.save({"step": step, "weights": torch.arange(6) * step})


def _keys(bucket) -> list[str]:
    return sorted(o.key for o in bucket.objects.filter(Prefix="checkpoints/"))


@pytest.mark.django_db(transaction=True)  # the callback saves its points from a thread of its own
def test_a_checkpoint_written_on_one_host_is_resumed_from_on_another(s3, job, settings, tmp_path):
    settings.DISTILLERY_CHECKPOINT_DIR = tmp_path / "host-a"
    workdir = adopt_run_dir(job.pk, 1)
    with job_callback(job) as callback:
        for step in (10, 20):
            callback.before_checkpoint(step)
            callback.on_checkpoint(step, str(_write_checkpoint(workdir, step)))
    assert _keys(s3) == [f"checkpoints/job-{job.pk}/attempt-1/step-0000000020.pt"]  # the older one dropped

    settings.DISTILLERY_CHECKPOINT_DIR = tmp_path / "host-b"  # another machine: nothing of run 1 on its disk
    resumed = adopt_run_dir(job.pk, 2)
    assert not (resumed / "checkpoint").exists()
    assert checkpoint_mirror.restore(job.pk, 2, resumed / "checkpoint") == 20
    state = checkpoint.Checkpoints(resumed / "checkpoint", every=10, identity=IDENTITY).load()
    assert state["step"] == 20 and state["weights"].tolist() == [0, 20, 40, 60, 80, 100]


def test_a_run_resumes_from_the_newest_earlier_run_never_a_later_one(s3, job, tmp_path):
    for attempt, step in ((1, 30), (2, 10), (4, 50)):
        checkpoint_mirror.upload(job.pk, attempt, step, _write_checkpoint(tmp_path / f"run-{attempt}", step))
    assert checkpoint_mirror.restore(job.pk, 3, tmp_path / "run-3") == 10  # attempt 2's, not 4's (a later run)
    assert checkpoint.Checkpoints(tmp_path / "run-3", 10, IDENTITY).load()["step"] == 10
    assert checkpoint_mirror.restore(job.pk, 1, tmp_path / "again") == 30


def test_nothing_stored_means_training_starts_over(s3, job, tmp_path):
    assert checkpoint_mirror.restore(job.pk, 2, tmp_path / "checkpoint") is None
    assert not (tmp_path / "checkpoint").exists()


def test_the_stored_checkpoints_go_when_the_job_ends(s3, job, tmp_path):
    checkpoint_mirror.upload(job.pk, 1, 10, _write_checkpoint(tmp_path, 10))
    assert len(_keys(s3)) == 1
    lifecycle.finish_job(job, Job.Status.FAILED, error="stopped")
    assert _keys(s3) == []


def test_on_the_filesystem_nothing_is_mirrored(bucket, job, tmp_path):
    assert checkpoint_mirror.upload(job.pk, 1, 10, _write_checkpoint(tmp_path, 10)) is None
    assert checkpoint_mirror.restore(job.pk, 2, tmp_path / "other") is None
    assert _keys(bucket) == []


def test_the_checkpoints_file_name_is_mlcores():
    assert checkpoint_mirror.CHECKPOINT_NAME == checkpoint.CHECKPOINT_NAME
