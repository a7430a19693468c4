"""A job's callback saves and sends what training reports from a thread of its own: training never waits on the
database or Redis, yet every point is saved, in order, before the job can finish."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import services as dataset_services
from jobs.models import Job, MetricPoint
from jobs.training import events, launch, lifecycle
from jobs.training.callback import job_callback
from mlcore.callbacks import Phase
from tests.conftest import csv_bytes

# The writer thread has its own database connection: it must see the job the test created.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def job(user):
    upload = SimpleUploadedFile("a.csv", csv_bytes([("good", "pos"), ("bad", "neg")]))
    dataset = dataset_services.create_dataset(user, "d", upload)
    return Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="running")


@pytest.fixture
def held_writes(monkeypatch):
    """Every record_metrics call waits until the test sets the returned event (at most 30 s)."""
    release = threading.Event()
    original = lifecycle.record_metrics

    def held(job, points):
        release.wait(30)
        original(job, points)

    monkeypatch.setattr(lifecycle, "record_metrics", held)
    return release


def test_reports_return_while_the_database_is_held_and_are_all_saved_in_order_on_close(job, held_writes):
    reported = time.time()
    with job_callback(job) as callback:
        for step in range(1, 6):
            callback.on_batch_end(step, 10, {"train/loss": 1.0 / step, "lr": 2e-5})
        callback.on_evaluate("val", 5, {"val/accuracy": 0.75, "val/report": {"not": "a number"}})
        assert not callback.should_stop()
        assert MetricPoint.objects.filter(job=job).count() == 0  # nothing written yet, and training went on
        held_writes.set()

    points = list(MetricPoint.objects.filter(job=job).values_list("seq", "step", "kind", "values"))
    assert [p[:3] for p in points] == [(1, 1, "train"), (2, 2, "train"), (3, 3, "train"), (4, 4, "train"),
                                       (5, 5, "train"), (6, 5, "val")]  # fmt: skip
    assert points[2][3] == {"train/loss": pytest.approx(1 / 3), "lr": 2e-5, "time": pytest.approx(reported, abs=60)}
    assert points[5][3] == {"val/accuracy": 0.75, "time": pytest.approx(reported, abs=60)}
    times = [p[3]["time"] for p in points]
    assert times == sorted(times)  # when training reported each, not when the writer saved them (all at once)
    job.refresh_from_db()
    assert job.progress == pytest.approx(0.5 * Job.TRAINING_SHARE)  # half the steps: half of training's share


def test_after_a_checkpoint_training_goes_on_only_once_every_earlier_point_is_saved(job, monkeypatch):
    events: list[str] = []
    original = lifecycle.record_metrics

    def logged(job, points):
        original(job, points)
        events.append(f"saved up to seq {points[-1].seq}")

    monkeypatch.setattr(lifecycle, "record_metrics", logged)
    with job_callback(job) as callback:
        for step in range(1, 4):
            callback.on_batch_end(step, 10, {"train/loss": 0.5})
        callback.on_checkpoint(3, "/checkpoints/checkpoint.pt")
        events.append("training goes on")
    assert events[-1] == "training goes on" and events[-2] == "saved up to seq 3"


def test_the_jobs_pages_get_its_status_each_time_its_whole_percentage_moves(job, monkeypatch):
    sent: list[tuple[str, float]] = []
    monkeypatch.setattr(events, "broadcast_status", lambda job: sent.append((job.status, job.progress)))
    with job_callback(job) as callback:
        for step in range(1, 101):
            callback.on_batch_end(step, 1000, {"train/loss": 0.5})
    assert sent[-1] == ("running", pytest.approx(0.09))  # the last progress, sent when the writer closed
    percents = [int(progress * 100) for _, progress in sent]
    assert percents == sorted(set(percents))  # at most one message per whole percent, in order
    job.refresh_from_db()
    assert job.progress == pytest.approx(0.1 * Job.TRAINING_SHARE)


def test_a_phase_is_recorded_and_sent_after_the_points_reported_before_it(job, monkeypatch):
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(
        events, "broadcast_status", lambda job: sent.append((job.phase, job.metrics.count()))
    )  # fmt: skip
    with job_callback(job) as callback:
        callback.on_batch_end(1, 10, {"train/loss": 0.5})
        callback.on_phase(Phase.VALIDATING)
    assert [s for s in sent if s[0]][0] == ("validating", 1)  # progress messages may come first, without a phase
    job.refresh_from_db()
    assert job.phase == "validating"
    lifecycle.finish_job(job, Job.Status.SUCCEEDED)
    assert job.phase == ""


def test_a_resumed_job_continues_the_seq_of_the_points_it_has(job):
    lifecycle.record_metric(job, seq=1, step=1, kind="train", values={})
    lifecycle.record_metric(job, seq=2, step=2, kind="train", values={})
    with job_callback(job) as callback:
        callback.on_batch_end(3, 10, {"train/loss": 0.5})
    assert list(MetricPoint.objects.filter(job=job).values_list("seq", "step")) == [(1, 1), (2, 2), (3, 3)]


def test_a_cancel_request_reaches_should_stop_without_a_query_from_training(job, django_assert_num_queries):
    with job_callback(job) as callback:
        assert not callback.should_stop()
        launch.request_cancel(job)
        assert callback.cancel_seen.wait(10)
        with django_assert_num_queries(0):
            assert callback.should_stop()


def test_a_failed_write_fails_the_training_thread_at_its_next_report(job, monkeypatch):
    def broken(job, points):
        raise ConnectionError("database went away")

    monkeypatch.setattr(lifecycle, "record_metrics", broken)
    with pytest.raises(RuntimeError, match="could not record the job's metrics: database went away"):
        with job_callback(job) as callback:
            callback.on_batch_end(1, 10, {"train/loss": 0.5})
    # The error reached the block's end through close(); a report after it raises at once.
    with pytest.raises(RuntimeError, match="database went away"):
        callback.on_batch_end(2, 10, {"train/loss": 0.5})


def test_an_error_in_training_is_the_one_raised_and_what_was_reported_is_still_saved(job):
    with pytest.raises(ValueError, match="training broke"):
        with job_callback(job) as callback:
            callback.on_batch_end(1, 10, {"train/loss": 0.5})
            raise ValueError("training broke")
    assert MetricPoint.objects.filter(job=job).count() == 1
