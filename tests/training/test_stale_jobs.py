"""A worker machine that vanishes: its job's heartbeat stops, the periodic reap_stale_jobs task sends the job
again, and a live worker takes it over; a job whose worker is alive is left alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import tasks
from jobs.datasets import services as dataset_services
from jobs.models import Job
from jobs.training import dispatch, lifecycle
from tests.conftest import REPO, watch_job


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def _running(user, dataset, *, silent_for: float, **fields) -> Job:
    beat = timezone.now() - timedelta(seconds=silent_for)
    fields = {"params": {}, **fields}
    return Job.objects.create(
        owner=user, kind="finetune", dataset=dataset, status="running", worker="gone@host",
        attempts=1, started_at=beat, heartbeat_at=beat, **fields,
    )


@pytest.mark.django_db
def test_only_silent_running_jobs_are_sent_again(user, dataset, settings, monkeypatch):
    settings.DISTILLERY_STALE_AFTER = 300
    sent = []
    monkeypatch.setattr(dispatch.app, "send_task", lambda name, args, **kw: sent.append((name, args, kw)))
    silent = _running(user, dataset, silent_for=301)
    _running(user, dataset, silent_for=100)  # alive
    Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="queued")
    assert tasks.reap_stale_jobs() == [silent.pk]
    ((name, args, kw),) = sent
    silent.refresh_from_db()
    assert name == tasks.run_job.name == dispatch.RUN_JOB
    assert args == (silent.pk,) and kw["queue"] == "gpu" and kw["task_id"] == silent.celery_task_id


@pytest.mark.django_db
def test_a_silent_job_is_taken_over_without_a_redelivery_and_a_live_one_is_not(user, dataset, settings):
    settings.DISTILLERY_STALE_AFTER = 300
    alive = _running(user, dataset, silent_for=10)
    assert lifecycle.claim_job(alive.pk, worker="other") is None
    silent = _running(user, dataset, silent_for=400)
    taken = lifecycle.claim_job(silent.pk, worker="other")
    assert taken is not None and (taken.worker, taken.attempts) == ("other", 2)
    assert (timezone.now() - taken.heartbeat_at).total_seconds() < 5
    assert lifecycle.claim_job(silent.pk, worker="third") is None  # fresh again: nobody else takes it


@pytest.mark.django_db(transaction=True)
def test_a_running_job_beats_from_its_own_thread(user, dataset, settings):
    settings.DISTILLERY_HEARTBEAT_SECONDS = 0.01
    job = _running(user, dataset, silent_for=1000)
    with lifecycle.keep_alive(job):
        deadline = time.monotonic() + 10
        while Job.objects.get(pk=job.pk).heartbeat_at < timezone.now() - timedelta(seconds=5):
            assert time.monotonic() < deadline, "no heartbeat within 10 s"
    assert not Job.objects.get(pk=job.pk).is_stale()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_reaper_gives_a_vanished_workers_job_to_the_live_worker(
    user, api, dataset, tiny_bert, fast_params, settings, celery_worker
):
    """The worker process reads DISTILLERY_STALE_AFTER from its environment (300 s): a job silent for an hour."""
    job = _running(user, dataset, silent_for=3600, base_model=str(tiny_bert), params=dict(fast_params, epochs=1))
    assert tasks.reap_stale_jobs() == [job.pk]

    final = asyncio.run(watch_job(job.pk, api.token, timeout=120))[-1]
    assert final["status"] == "succeeded", final["error"]
    job.refresh_from_db()
    assert job.attempts == 2 and job.worker.startswith("test-") and job.result_model is not None


def _beat_schedule(**env: str) -> subprocess.CompletedProcess:
    code = "from config import settings; print(settings.CELERY_BEAT_SCHEDULE['reap-stale-jobs']['schedule'])"
    environ = {k: v for k, v in os.environ.items() if k != "DISTILLERY_REAP_SECONDS"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**environ, **env}, capture_output=True, text=True, timeout=60
    )


def test_beat_reaps_as_often_as_the_operator_says_and_refuses_a_non_positive_interval():
    assert _beat_schedule().stdout.strip() == "60.0"  # the default
    assert _beat_schedule(DISTILLERY_REAP_SECONDS="2.5").stdout.strip() == "2.5"
    refused = _beat_schedule(DISTILLERY_REAP_SECONDS="0")
    assert refused.returncode != 0 and "DISTILLERY_REAP_SECONDS=0.0: use a positive number" in refused.stderr
