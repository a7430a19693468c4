"""A training job's progress bar is full only once the job has ended: its training steps fill the first 90%, and
each phase after them (testing, saving, measuring CPU speed, comparing int8, storing) moves it on."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import services as dataset_services
from jobs.models import Job
from jobs.training import lifecycle
from jobs.training.callback import job_callback
from mlcore.callbacks import Phase
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db(transaction=True)  # the callback's writer thread reads the job


@pytest.fixture
def job(user):
    upload = SimpleUploadedFile("a.csv", csv_bytes([("good", "pos"), ("bad", "neg")]))
    dataset = dataset_services.create_dataset(user, "d", upload)
    return Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="running", attempts=1)


def progress(job) -> float:
    return Job.objects.get(pk=job.pk).progress


def test_the_last_training_step_leaves_the_bar_at_90_percent(job):
    with job_callback(job) as callback:
        for step in range(1, 11):
            callback.on_batch_end(step, 10, {"train/loss": 0.5})
    assert progress(job) == pytest.approx(0.9)


def test_each_phase_after_training_moves_the_bar_on_and_only_the_end_fills_it(job):
    seen = []
    for phase in (Phase.TESTING, Phase.SAVING, lifecycle.MEASURING_SPEED, lifecycle.COMPARING_INT8, lifecycle.STORING):
        lifecycle.set_phase(job, phase)
        seen.append(round(progress(job), 4))
    assert seen == [0.9, 0.92, 0.94, 0.96, 0.98]
    assert Job.objects.get(pk=job.pk).eta_seconds is None  # no "training left" once training is over
    lifecycle.finish_job(job, Job.Status.SUCCEEDED)
    assert progress(job) == 1.0


def test_progress_never_moves_back_when_a_late_training_report_follows_a_later_phase(job):
    # The writer saves reports in order but records progress when it polls: a batch, then "testing" and "saving
    # the model" in one go, must end at saving's 92%, not at the batch's 90%.
    with job_callback(job) as callback:
        callback.on_batch_end(10, 10, {"train/loss": 0.5})
        callback.on_phase(Phase.TESTING)
        callback.on_phase(Phase.SAVING)
    assert progress(job) == pytest.approx(0.92)
    lifecycle.set_training_progress(job, 0.5)
    assert progress(job) == pytest.approx(0.92)


def test_the_job_page_shows_the_bar_where_the_job_is(logged_in, job):
    lifecycle.set_phase(job, lifecycle.MEASURING_SPEED)
    html = logged_in.get(f"/jobs/{job.pk}/").content.decode()
    assert 'aria-valuenow="94"' in html and '<span class="progress-text">94%</span>' in html
    assert "measuring CPU speed" in html
