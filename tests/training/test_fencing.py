"""Fencing: every write of a worker's run is conditional on the run still owning its job (running, at the attempt
it claimed). A run that stalled, was presumed dead and replaced, then woke up, stops at its next write and
changes nothing: no metric point, phase, progress, output, model record, end state, webhook or checkpoint folder.

In-process against the real database; tests/training/test_stalled_worker.py does it with two real workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.datasets import services as dataset_services
from jobs.files import adopt_run_dir, checkpoint_dir
from jobs.models import Job, MetricPoint, ModelRecord
from jobs.training import lifecycle
from jobs.training.callback import JobCallback

pytestmark = pytest.mark.django_db(transaction=True)
RECORD = {
    "kind": "finetune",
    "params": {},
    "metrics": {},
    "label_names": ["a", "b"],
    "num_parameters": 1,
    "size_bytes": 1,
}


@pytest.fixture(autouse=True)
def _checkpoints_in_tmp(settings, tmp_path):
    settings.DISTILLERY_CHECKPOINT_DIR = tmp_path / "checkpoints"


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


@pytest.fixture
def stalled_and_replaced(user, dataset, settings):
    """(the first run's job, the second run's job): the first claimed it, went silent, the second took it over."""
    settings.DISTILLERY_STALE_AFTER = 60
    job = Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, webhook_url="")
    first = lifecycle.claim_job(job.pk, "first@host")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
    second = lifecycle.claim_job(job.pk, "second@host")
    assert (first.run_attempt, second.run_attempt) == (1, 2)
    return first, second


def _point(job: Job, seq: int, step: int, kind: str = "train") -> MetricPoint:
    return MetricPoint(job=job, seq=seq, step=step, kind=kind, values={"train/loss": 0.5})


def test_the_replaced_run_writes_no_metric_point(stalled_and_replaced):
    first, second = stalled_and_replaced
    lifecycle.record_metrics(second, [_point(second, 1, 1)])
    with pytest.raises(lifecycle.Superseded):
        lifecycle.record_metrics(first, [_point(first, 2, 7)])
    assert list(MetricPoint.objects.filter(job=second).values_list("seq", "step")) == [(1, 1)]


def test_the_replaced_run_changes_neither_phase_nor_progress_nor_heartbeat(stalled_and_replaced):
    first, second = stalled_and_replaced
    lifecycle.set_phase(second, "training")
    lifecycle.set_progress(second, 0.25)
    before = Job.objects.get(pk=second.pk)
    with pytest.raises(lifecycle.Superseded):
        lifecycle.set_phase(first, "measuring CPU speed")
    with pytest.raises(lifecycle.Superseded):
        lifecycle.set_progress(first, 0.9)
    assert lifecycle.heartbeat(first) is False
    after = Job.objects.get(pk=second.pk)
    assert (after.phase, after.progress, after.heartbeat_at) == ("training", 0.25, before.heartbeat_at)
    assert lifecycle.heartbeat(second) is True


def test_the_replaced_run_cannot_end_the_job_nor_register_a_model(stalled_and_replaced, settings):
    first, second = stalled_and_replaced
    folder = adopt_run_dir(second.pk, 2)
    (folder / "checkpoint").mkdir()
    made = []

    def make_record():
        made.append(1)
        return ModelRecord.objects.create(owner=first.owner, name="should-not-exist", **RECORD)

    with pytest.raises(lifecycle.Superseded):
        lifecycle.succeed_with(first, make_record)
    assert lifecycle.finish_job(first, Job.Status.FAILED, error="IntegrityError: duplicate seq") is False
    assert made == [] and not ModelRecord.objects.filter(name="should-not-exist").exists()
    job = Job.objects.get(pk=second.pk)
    assert (job.status, job.error, job.worker, job.attempts) == ("running", "", "second@host", 2)
    assert folder.is_dir()  # the successor's checkpoint folder is left alone

    record = lifecycle.succeed_with(
        second, lambda: ModelRecord.objects.create(owner=second.owner, name="the-model", **RECORD)
    )
    job = Job.objects.get(pk=second.pk)
    assert (job.status, job.result_model_id) == ("succeeded", record.pk)
    assert not checkpoint_dir(job.pk).exists()  # a finished job keeps no checkpoints


def test_the_replaced_runs_callback_stops_training_at_its_next_report(stalled_and_replaced):
    first, second = stalled_and_replaced
    callback = JobCallback(first)
    try:
        callback.on_batch_end(1, 10, {"train/loss": 0.7})
        callback.on_checkpoint(1, "unused")  # waits until the writer has tried to save the point before it
    except RuntimeError as exc:
        assert isinstance(exc.__cause__, lifecycle.Superseded)
    else:
        pytest.fail("the replaced run's checkpoint went through")
    finally:
        callback.close()
    with pytest.raises(RuntimeError):
        callback.should_stop()
    assert not MetricPoint.objects.filter(job_id=first.pk).exists()


def test_a_resumed_run_drops_what_the_run_before_it_reported_past_its_checkpoint(stalled_and_replaced):
    first, second = stalled_and_replaced
    # The first run reported steps 1-6, validated at step 4 (the end of an epoch) and checkpointed after step 4.
    points = [_point(first, s, s) for s in range(1, 5)] + [_point(first, 5, 4, "val")]
    points += [_point(first, 6, 5), _point(first, 7, 6)]
    MetricPoint.objects.bulk_create(points)
    assert lifecycle.rewind_metrics(second, 4) == 3  # steps 5 and 6, and the validation that ran after step 4's
    kept = list(MetricPoint.objects.filter(job=second).order_by("seq").values_list("kind", "step"))
    assert kept == [("train", 1), ("train", 2), ("train", 3), ("train", 4)]
    job = Job.objects.get(pk=second.pk)
    assert job.rewinds == [[4, 7]] and job.to_event()["rewinds"] == [[4, 7]]
    with pytest.raises(lifecycle.Superseded):
        lifecycle.rewind_metrics(first, 0)
    assert MetricPoint.objects.filter(job=second).count() == 4


def test_a_job_that_fails_for_good_leaves_no_checkpoint(user, dataset, settings):
    settings.DISTILLERY_MAX_ATTEMPTS = 2
    job = Job.objects.create(
        owner=user, kind="finetune", dataset=dataset, params={}, status="running", worker="gone@host", attempts=2,
        started_at=timezone.now(), heartbeat_at=timezone.now(),
    )  # fmt: skip
    saved = adopt_run_dir(job.pk, 2) / "checkpoint" / "checkpoint.pt"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"x" * 1000)
    assert lifecycle.claim_job(job.pk, "third@host", redelivered=True) is None
    job.refresh_from_db()
    assert job.status == "failed" and "2 times" in job.error
    assert not checkpoint_dir(job.pk).exists()


def test_a_run_adopts_the_latest_earlier_runs_folder_and_a_woken_run_cannot_write_into_it(tmp_path, settings):
    settings.DISTILLERY_CHECKPOINT_DIR = tmp_path
    first = adopt_run_dir(7, 1)
    (first / "checkpoint").mkdir()
    (first / "checkpoint" / "checkpoint.pt").write_text("step 40")
    second = adopt_run_dir(7, 2)
    assert second.name == "attempt-2" and (second / "checkpoint" / "checkpoint.pt").read_text() == "step 40"
    assert not first.exists()
    # The first run wakes up and writes its next checkpoint where it always did: a path no later run reads.
    (first / "checkpoint").mkdir(parents=True)
    (first / "checkpoint" / "checkpoint.pt").write_text("step 60 of a dead run")
    third = adopt_run_dir(7, 3)
    assert (third / "checkpoint" / "checkpoint.pt").read_text() == "step 40"
    assert adopt_run_dir(7, 3) == third  # the same run asking again gets its own folder
