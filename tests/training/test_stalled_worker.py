"""A worker that stalls (SIGSTOP) mid-job is presumed dead, a second real worker takes the job over and finishes
it; the first, resumed (SIGCONT) while the second runs, stops at its next write and changes nothing: the job
succeeds once, with one model, each (kind, step) once in its history, and no checkpoint folder left behind."""

from __future__ import annotations

import os
import signal
from collections import Counter

import psutil
import pytest

from config.celery import app
from jobs.files import checkpoint_dir
from jobs.models import Job, MetricPoint, ModelRecord
from jobs.training import lifecycle
from tests.conftest import _worker_database_url, launch_finetune, worker_process
from tests.polling import until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



def _last_train_step(job_id: int) -> int:
    return MetricPoint.objects.filter(job_id=job_id, kind="train").order_by("-seq").values_list("step", flat=True)[:1]


def test_a_stalled_worker_that_wakes_up_after_its_job_was_taken_over_changes_nothing(
    api, sentiment_csv, tiny_bert, fast_params, settings, celery_worker, tmp_path
):
    settings.DISTILLERY_STALE_AFTER = 2  # this process's reaper; the second worker gets the same below
    params = dict(fast_params, epochs=3, batch_size=4, checkpoint_every=20)  # 32 steps an epoch, 96 in all
    job_id = launch_finetune(api, sentiment_csv, tiny_bert, params)["id"]
    first = Job.objects.get(pk=job_id)
    until(lambda: (steps := _last_train_step(job_id)) and steps[0] >= 22, "the first run to pass step 22")
    first = Job.objects.get(pk=job_id)
    (pool,) = psutil.Process(celery_worker.pid).children()
    pool.suspend()  # SIGSTOP: every thread of the run stops, heartbeats included
    try:
        stalled_at = _last_train_step(job_id)[0]
        name = f"second-{os.getpid()}@distillery"
        with worker_process(name, _worker_database_url(), tmp_path / "second.log", DISTILLERY_STALE_AFTER="2"):
            until(lambda: Job.objects.stale().filter(pk=job_id).exists(), "the stalled job to look dead")
            assert lifecycle.requeue_stale_jobs() == [job_id]
            until(
                lambda: (
                    Job.objects.filter(pk=job_id, worker=name, attempts=2).exists()
                    and MetricPoint.objects.filter(job_id=job_id, kind="train", step=22).exists()
                    and Job.objects.get(pk=job_id).rewinds
                ),
                "the second worker to take the job over and resume it",
            )
            pool.resume()  # SIGCONT while the second run trains: the first's next write must stop it
            until(lambda: Job.objects.get(pk=job_id).is_finished, "the job to end")
            until(
                lambda: app.control.inspect([first.worker], timeout=1).active() == {first.worker: []},
                "the woken worker to give up its run",
            )
    finally:
        if pool.status() == psutil.STATUS_STOPPED:
            pool.send_signal(signal.SIGCONT)

    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded", job.error
    assert (job.worker, job.attempts) == (name, 2)
    assert stalled_at > 20 and [step for step, _ in job.rewinds] == [20]
    assert list(ModelRecord.objects.filter(owner=job.owner)) == [job.result_model]  # one model, the job's
    kinds_steps = Counter(MetricPoint.objects.filter(job_id=job_id).values_list("kind", "step"))
    assert max(kinds_steps.values()) == 1, [key for key, n in kinds_steps.items() if n > 1]
    train = sorted(step for kind, step in kinds_steps if kind == "train")
    assert train == list(range(1, 97))
    assert not checkpoint_dir(job_id).exists()
    # The woken run did try: its next write was refused and it stopped (rather than, say, sleeping through).
    woken = celery_worker.log_path.read_text(errors="replace")
    assert f"job {job_id}: stopped" in woken and "another run owns it now" in woken
