"""A job's life on its worker: claimed, kept alive, reporting progress, phase and metrics, finished; and a job
whose worker went silent given to another.

Runs in: the workers (requeue_stale_jobs: Celery beat's reap_stale_jobs task). Each change is a compare-and-set
on the Job row (jobs.models), then announced (events) and, at the end, sent to the job's webhook.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
import uuid

from django.conf import settings
from django.db import connection
from django.utils import timezone

from mlcore.callbacks import Cancelled

from ..models import Job, MetricPoint, ModelRecord
from . import dispatch, events, webhooks

log = logging.getLogger(__name__)


def claim_job(job_id: int, worker: str, *, redelivered: bool = False) -> Job | None:
    """Take a job for this worker, or None if there is nothing to run.

    A queued job moves to running. A running job is taken over only when its worker is gone: the broker
    redelivered its task (late acks: the worker process died), or its heartbeat is older than
    DISTILLERY_STALE_AFTER seconds (the whole machine went away; reap_stale_jobs sent the task again). It resumes
    from its last checkpoint, up to DISTILLERY_MAX_ATTEMPTS runs, and fails with a clear message after that.
    """
    if Job.objects.claim(job_id, worker):
        job = Job.objects.select_related("dataset", "teacher").get(pk=job_id)
        events.broadcast_status(job)
        return job
    orphan = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).first()
    if orphan is not None and not (redelivered or orphan.is_stale()):
        orphan = None
    if orphan is None:
        return None  # taken by a live worker, finished, cancelled while queued, or deleted
    if orphan.attempts >= settings.DISTILLERY_MAX_ATTEMPTS:
        finish_job(
            orphan,
            Job.Status.FAILED,
            error=f"the worker running this job ({orphan.worker or 'unknown'}) stopped before it finished, "
            f"{orphan.attempts} times; launch the job again",
        )
        return None
    if not Job.objects.take_over(orphan, worker):
        return None
    log.warning("job %s: taking over from %s (attempt %s)", job_id, orphan.worker, orphan.attempts + 1)
    return Job.objects.select_related("dataset", "teacher").get(pk=job_id)


def heartbeat(job_id: int) -> None:
    """A sign of life from the worker running the job."""
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())


@contextlib.contextmanager
def running(job: Job):
    """The work of a claimed job (training, a file classification): heartbeats while it runs, then how it ended
    recorded: cancelled on Cancelled, failed with a readable error on any other exception (not raised further).
    Success is the work's own to record, with what it made. So a job never stays running."""
    with keep_alive(job.pk):
        try:
            yield
        except Cancelled:
            finish_job(job, Job.Status.CANCELLED)
        except Exception as exc:
            log.exception("job %s failed", job.pk)
            message = f"{type(exc).__name__}: {exc}"
            finish_job(job, Job.Status.FAILED, error=message + "\n\n" + traceback.format_exc(limit=5))


@contextlib.contextmanager
def keep_alive(job_id: int):
    """Record a sign of life every DISTILLERY_HEARTBEAT_SECONDS while the block runs, from a thread of its own:
    long phases without batches (tokenising, evaluating a big test set) must not look like a dead worker."""
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(settings.DISTILLERY_HEARTBEAT_SECONDS):
                try:
                    heartbeat(job_id)
                except Exception:  # a database hiccup: try again at the next beat
                    log.warning("job %s: heartbeat failed", job_id, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"distillery-heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def requeue_stale_jobs() -> list[int]:
    """Send the task of every running job whose worker went silent again; a live worker takes it over."""
    requeued = []
    for job in Job.objects.stale():
        task_id = uuid.uuid4().hex
        Job.objects.filter(pk=job.pk).update(celery_task_id=task_id)
        dispatch.run(job, task_id)
        log.warning("job %s: no heartbeat from %s since %s; sent it again", job.pk, job.worker, job.heartbeat_at)
        requeued.append(job.pk)
    return requeued


def set_progress(job_id: int, progress: float) -> None:
    Job.objects.filter(pk=job_id).update(progress=progress)


def set_phase(job_id: int, phase: str) -> None:
    """Record what a running job is doing now and tell its pages."""
    if Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(phase=phase):
        events.broadcast_status(Job.objects.get(pk=job_id))


def cancel_requested(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def record_metric(job: Job, *, seq: int, step: int, kind: str, values: dict) -> MetricPoint:
    """Save a metric point, then push it to every open browser on the job."""
    point = MetricPoint(job=job, seq=seq, step=step, kind=kind, values=values)
    record_metrics(job, [point])
    return point


def record_metrics(job: Job, points: list[MetricPoint]) -> None:
    """Save the job's metric points in one INSERT, then push each, in order, to every open browser on it."""
    MetricPoint.objects.bulk_create(points)
    events.broadcast_metrics(job.pk, points)


def finish_job(job: Job, status: str, *, error: str = "", result_model: ModelRecord | None = None) -> None:
    """Record a job's end state and announce it; only a running job can finish (Job.finish), so a late call
    cannot undo a cancel, and only the call that ended it sends the webhook."""
    ended = job.finish(status, error=error, result_model=result_model)
    events.broadcast_status(job)
    if ended:
        webhooks.notify(job)
