"""What a job page tells about time: a running job's training time left at its pace so far, and for a queued
job how many jobs wait before it on its queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.datasets import services as dataset_services
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def _job(owner, dataset, **fields) -> Job:
    return Job.objects.create(owner=owner, kind="finetune", dataset=dataset, params={}, **fields)


def test_a_running_job_a_quarter_through_its_training_after_100_s_has_about_300_s_to_go(api, user, dataset):
    job = _job(user, dataset, status="running", progress=0.25 * Job.TRAINING_SHARE, attempts=1,
               started_at=timezone.now() - timedelta(seconds=100))  # fmt: skip
    assert job.eta_seconds == pytest.approx(300, abs=2)
    assert job.to_event()["eta_seconds"] == pytest.approx(300, abs=2)
    assert api.get(f"/api/jobs/{job.pk}/").json()["eta_seconds"] == pytest.approx(300, abs=2)


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "running", "progress": 0.005, "attempts": 1},  # too early to tell
        {"status": "running", "progress": 0.92, "attempts": 1},  # training is over: testing, measuring, storing
        {"status": "running", "progress": 0.5, "attempts": 2},  # resumed: its pace since the restart misleads
        {"status": "succeeded", "progress": 1.0, "attempts": 1},
        {"status": "queued", "progress": 0.0, "attempts": 0},
    ],
)
def test_no_estimate_where_the_pace_says_nothing(user, dataset, fields):
    job = _job(user, dataset, started_at=timezone.now() - timedelta(seconds=100), **fields)
    assert job.eta_seconds is None


def test_a_queued_job_knows_how_many_wait_before_it_on_its_queue(api, user, other_user, dataset, trained_model):
    _job(user, dataset, status="running")
    first = _job(other_user, dataset)  # anyone's jobs share the GPU queue
    _job(user, dataset, status="cancelled")
    classify = Job.objects.create(owner=user, kind="classify", model=trained_model, params={})  # the CPU queue
    mine = _job(user, dataset)

    assert [j.jobs_ahead() for j in (first, classify, mine)] == [0, 0, 1]
    assert api.get(f"/api/jobs/{mine.pk}/").json()["jobs_ahead"] == 1
    assert {j["jobs_ahead"] for j in api.get("/api/jobs/").json()["results"]} == {None}  # not per row of a list
    page = api.get(f"/api/jobs/{first.pk}/")
    assert page.status_code == 404  # not mine, though it is counted


def test_the_job_page_shows_the_queue_and_carries_the_estimate(logged_in, user, dataset):
    _job(user, dataset)
    queued = _job(user, dataset)
    assert '<span id="job-queue" class="muted small">1 job queued before it</span>' in (
        logged_in.get(f"/jobs/{queued.pk}/").content.decode()
    )
    running = _job(user, dataset, status="running", progress=0.5 * Job.TRAINING_SHARE, attempts=1,
                   started_at=timezone.now() - timedelta(seconds=60))  # fmt: skip
    html = logged_in.get(f"/jobs/{running.pk}/").content.decode()
    assert 'id="job-eta" class="muted small" data-eta="60.' in html and 'id="job-queue"' not in html
