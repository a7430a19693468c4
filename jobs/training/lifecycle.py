"""A job's life on its worker: claimed, kept alive, reporting progress, phase and metrics, finished; and a job
whose worker went silent given to another.

Runs in: the workers (requeue_stale_jobs: Celery beat's reap_stale_jobs task). Each change is a compare-and-set
on the Job row (jobs.models), then announced (events) and, at the end, sent to the job's webhook.

Fencing: a worker can stall (SIGSTOP, a frozen VM, a long GC pause) long enough to be presumed dead and replaced,
then wake up. Every write of a run is therefore conditional on the run still owning the job (Job.owned(): running,
at the attempt it claimed); one that no longer does raises Superseded at its next write and changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Max, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from mlcore.callbacks import Cancelled, Phase

from ..files import checkpoint_dir
from ..models import Job, MetricPoint, ModelRecord
from . import checkpoint_mirror, dispatch, events, failures, joblog, queue_order, webhooks

log = logging.getLogger(__name__)


class Superseded(Exception):
    """This run no longer owns its job (another worker took it over, or it ended): it must stop and write nothing."""


def fence(job: Job) -> None:
    """Inside a transaction: hold the job's row for the rest of it if this run still owns the job (a takeover
    waits until the transaction ends), else raise Superseded. It doubles as a heartbeat."""
    if not job.owned().update(heartbeat_at=timezone.now()):
        raise Superseded(f"job {job.pk}: attempt {job.run_attempt} no longer owns it")


def claim_turn(task_id: str, worker: str, *, redelivered: bool = False) -> Job | None:
    """Take the job a run_job message runs now, or None if there is nothing to run (queue_order: a message is a
    turn on its queue). Held by a queued job: the first queued job of that queue starts. Held by a running job: a
    redelivery, or the reaper's, that may take it over (claim_job). Held by none, or by a job that ended: nothing."""
    holder = Job.objects.filter(celery_task_id=task_id).first()
    if holder is None or holder.status == Job.Status.RUNNING:
        return None if holder is None else claim_job(holder.pk, worker, redelivered=redelivered)
    if holder.status != Job.Status.QUEUED:
        return None
    claimed = queue_order.take_turn(holder, task_id, worker)
    if claimed is None:
        return None
    job = _claimed(claimed)
    events.broadcast_status(job)
    queue_order.broadcast(job.lane, job.owner_id)
    return job


def claim_job(job_id: int, worker: str, *, redelivered: bool = False) -> Job | None:
    """Take a job for this worker, or None if there is nothing to run.

    A queued job moves to running. A running job is taken over only when its worker is gone: the broker
    redelivered its task (late acks: the worker process died), or its heartbeat is older than
    DISTILLERY_STALE_AFTER seconds (the whole machine went away; reap_stale_jobs sent the task again). It resumes
    from its last checkpoint, up to DISTILLERY_MAX_ATTEMPTS runs, and fails with a clear message after that.
    """
    if Job.objects.claim(job_id, worker):
        job = _claimed(job_id)
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
    return _claimed(job_id)


def _claimed(job_id: int) -> Job:
    """The job as this run claimed it, its writes fenced by the attempt it holds now."""
    job = Job.objects.select_related("dataset", "teacher").get(pk=job_id)
    job.run_attempt = job.attempts
    return job


def heartbeat(job: Job) -> bool:
    """A sign of life from the worker running the job; False once this run no longer owns it."""
    return bool(job.owned().update(heartbeat_at=timezone.now()))


@contextlib.contextmanager
def running(job: Job):
    """The work of a claimed job (training, a file classification): heartbeats while it runs, then how it ended
    recorded: cancelled on Cancelled, failed with a readable error on any other exception (not raised further).
    Success is the work's own to record, with what it made. So a job never stays running.

    A run that no longer owns the job (Superseded, or any error once another run holds it) records nothing. What
    the run logs meanwhile is kept for the job's page (joblog.captured)."""
    with joblog.captured(job, fence), keep_alive(job):
        try:
            yield
        except Superseded as exc:
            log.warning("job %s: stopped, another run owns it now (%s)", job.pk, exc)
        except Cancelled:
            finish_job(job, Job.Status.CANCELLED)
        except Exception as exc:
            if not _still_owned(job):
                log.warning("job %s: stopped by %r; another run owns it now", job.pk, exc)
                return
            log.exception("job %s failed", job.pk)
            reason, detail = failures.failure_reason(job, exc), failures.failure_detail(exc)
            finish_job(job, Job.Status.FAILED, error=reason, error_detail=detail)


def _still_owned(job: Job) -> bool:
    """Whether this run still owns the job, asked again on a fresh connection when the error broke this one: the
    database drops the connections of a host it could not reach (config.settings.dead_peer_options), and that host
    is the one whose job was given away meanwhile."""
    try:
        return job.owned().exists()
    except DatabaseError:
        if connection.in_atomic_block:
            raise
        connection.close()
        return job.owned().exists()


@contextlib.contextmanager
def keep_alive(job: Job):
    """Record a sign of life every DISTILLERY_HEARTBEAT_SECONDS while the block runs, from a thread of its own:
    long phases without batches (tokenising, evaluating a big test set) must not look like a dead worker."""
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(settings.DISTILLERY_HEARTBEAT_SECONDS):
                try:
                    if not heartbeat(job):
                        return  # ended, or taken over: the run's next write stops it
                except Exception:  # a database hiccup: try again at the next beat
                    log.warning("job %s: heartbeat failed", job.pk, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"distillery-heartbeat-{job.pk}", daemon=True)
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


# The phases of a training job after its last step (mlcore's, then the runner's), and where each puts the progress
# bar: training fills 0 to Job.TRAINING_SHARE, these the rest in even steps. On a small job they take a third of
# its time; a bar at 100% through them would say the job is done.
MEASURING_SPEED = "measuring CPU speed"
COMPARING_INT8 = "comparing int8 with fp32"
STORING = "storing the model"
_AFTER = (Phase.TESTING, Phase.SAVING, MEASURING_SPEED, COMPARING_INT8, STORING)
# Named on the job's page, but no step of the bar of its own: it stays where int8's comparison put it.
FINDING_LABEL_ERRORS = "finding suspected label errors"
AFTER_TRAINING = {
    str(phase): Job.TRAINING_SHARE + i * (1 - Job.TRAINING_SHARE) / len(_AFTER) for i, phase in enumerate(_AFTER)
}


def set_progress(job: Job, progress: float) -> None:
    """Record how far the job is (0..1; it never moves back); raises Superseded when this run no longer owns it."""
    if not job.owned().update(progress=Greatest(F("progress"), Value(float(progress)))):
        raise Superseded(f"job {job.pk}: attempt {job.run_attempt} no longer owns it")


def set_training_progress(job: Job, fraction: float) -> None:
    """Record the fraction of its training steps a job has done: the first Job.TRAINING_SHARE of its bar."""
    set_progress(job, fraction * Job.TRAINING_SHARE)


def set_phase(job: Job, phase: str) -> None:
    """Record what a running job is doing now (and for a phase after training, its progress) and tell its pages;
    raises Superseded when this run no longer owns the job."""
    changes: dict = {"phase": phase}
    if phase in AFTER_TRAINING:
        changes["progress"] = Greatest(F("progress"), Value(AFTER_TRAINING[phase]))
    if not job.owned().update(**changes):
        raise Superseded(f"job {job.pk}: attempt {job.run_attempt} no longer owns it")
    log.info("job %s: %s", job.pk, phase)
    events.broadcast_status(Job.objects.get(pk=job.pk))


def cancel_requested(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def record_metric(job: Job, *, seq: int, step: int, kind: str, values: dict) -> MetricPoint:
    """Save a metric point, then push it to every open browser on the job."""
    point = MetricPoint(job=job, seq=seq, step=step, kind=kind, values=values)
    record_metrics(job, [point])
    return point


def record_metrics(job: Job, points: list[MetricPoint]) -> None:
    """Save the job's metric points in one INSERT, then push each, in order, to every open browser on it;
    raises Superseded (and saves nothing) when this run no longer owns the job."""
    with transaction.atomic():
        fence(job)
        MetricPoint.objects.bulk_create(points)
    events.broadcast_metrics(job.pk, points)


def rewind_metrics(job: Job, step: int) -> int:
    """A run resumed from the checkpoint after `step`: drop what the runs before it reported past that step (their
    training points after it, and a validation or test at it, which ran after the checkpoint was written), so
    each (kind, step) appears once in the history; the rewind is kept on the job (Job.rewinds) and sent with its
    status, so open pages drop those points too. How many were dropped."""
    past = Q(step__gt=step) | Q(step=step, kind__in=(MetricPoint.Kind.VAL, MetricPoint.Kind.TEST))
    with transaction.atomic():
        fence(job)
        points = MetricPoint.objects.filter(job=job)
        last_seq = points.aggregate(last=Max("seq"))["last"] or 0
        dropped, _ = points.filter(past).delete()
        if dropped:
            Job.objects.filter(pk=job.pk).update(rewinds=[*Job.objects.get(pk=job.pk).rewinds, [step, last_seq]])
    if dropped:
        log.warning("job %s: dropped %s metric points reported past step %s by the run before", job.pk, dropped, step)
        events.broadcast_status(Job.objects.get(pk=job.pk))
    return dropped


def finish_job(
    job: Job, status: str, *, error: str = "", error_detail: str = "", result_model: ModelRecord | None = None
) -> bool:
    """Record a job's end state and announce it; only a running job this run still owns can finish (Job.finish),
    so a late call cannot undo a cancel, and only the call that ended it sends the webhook and removes the
    job's checkpoints. Whether it ended the job."""
    ended = job.finish(status, error=error, error_detail=error_detail, result_model=result_model)
    _announce_end(job, ended)
    return ended


def succeed_with(job: Job, make_record: Callable[[], ModelRecord]) -> ModelRecord:
    """Make the run's model record and end the job succeeded, in one transaction that holds the job's row: a run
    that no longer owns the job makes no record (Superseded), and no record exists without its job's end."""
    with transaction.atomic():
        fence(job)
        record = make_record()
        ended = job.finish(Job.Status.SUCCEEDED, result_model=record)
    _announce_end(job, ended)
    return record


def _announce_end(job: Job, ended: bool) -> None:
    if ended:  # nothing resumes a finished job; its folder is gone before anyone hears it ended
        shutil.rmtree(checkpoint_dir(job.pk), ignore_errors=True)
        checkpoint_mirror.forget(job.pk)
    events.broadcast_status(job)
    if ended:
        webhooks.notify(job)
