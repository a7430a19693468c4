"""A job whose host vanishes after a checkpoint resumes on another host, which has none of the first host's
files, from the checkpoint in the bucket: the whole worker path (jobs.training.runner.execute) both times."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.datasets import services as dataset_services
from jobs.models import Job, JobLogLine
from jobs.training import checkpoint_mirror, lifecycle, runner

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_resumes_on_another_host_from_the_checkpoint_in_the_bucket(
    s3, user, sentiment_csv, tiny_bert, fast_params, settings, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)  # as the worker runs (celery --loglevel INFO): the job's log keeps INFO lines
    settings.DISTILLERY_STALE_AFTER = 60
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    params = dict(fast_params, epochs=1, batch_size=8, checkpoint_every=4)
    job = Job.objects.create(owner=user, kind="finetune", dataset=dataset, base_model=str(tiny_bert), params=params)

    # Host A trains until its checkpoint at step 8 is in the bucket; then it is lost and host B takes the job over.
    settings.DISTILLERY_CHECKPOINT_DIR = tmp_path / "host-a"
    first = lifecycle.claim_job(job.pk, "worker@host-a")
    upload, taken_over = checkpoint_mirror.upload, []

    def upload_then_vanish(job_id, attempt, step, path):
        stored = upload(job_id, attempt, step, path)
        if step == 8:
            Job.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
            taken_over.append(lifecycle.claim_job(job_id, "worker@host-b"))
        return stored

    monkeypatch.setattr(checkpoint_mirror, "upload", upload_then_vanish)
    runner.execute(first)  # stops at its next write: another run owns the job
    monkeypatch.setattr(checkpoint_mirror, "upload", upload)
    assert [o.key for o in s3.objects.filter(Prefix="checkpoints/")] == [
        f"checkpoints/job-{job.pk}/attempt-1/step-0000000008.pt"
    ]
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING

    settings.DISTILLERY_CHECKPOINT_DIR = tmp_path / "host-b"  # nothing of host A's folder here
    second = taken_over[0]
    assert second.run_attempt == 2
    runner.execute(second)

    final = Job.objects.get(pk=job.pk)
    assert final.status == Job.Status.SUCCEEDED, final.error
    messages = list(JobLogLine.objects.filter(job=final).values_list("message", flat=True))
    assert any("resuming from the checkpoint in storage" in m for m in messages), messages
    assert any("resuming after step 8" in m for m in messages), messages  # mlcore's own word: not from the start
    assert final.rewinds == []  # host A kept nothing past step 8; a run starting over would have rewound to 0
    steps = list(final.metrics.filter(kind="train").order_by("seq").values_list("step", flat=True))
    assert steps == list(range(1, steps[-1] + 1)) and steps[-1] > 8
    assert [o.key for o in s3.objects.filter(Prefix="checkpoints/")] == []  # gone once the job ended
    model = final.result_model
    assert {o.key for o in s3.objects.filter(Prefix=model.artifact_prefix + "/")} >= {
        f"{model.artifact_prefix}/{name}" for name in model.artifact_files
    }
