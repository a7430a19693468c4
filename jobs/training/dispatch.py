"""Sending work to the Celery workers, by task name: the web side never imports the tasks module (which imports
the worker's code), and each job goes to the Celery queue it was routed to (Job.queue, Job.route).

Runs in: the web process and the workers. A leaf: it imports nothing of jobs but the models.
"""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError

from config import queues
from config.celery import app
from config.redis_pool import CONNECT_TIMEOUT_S

from ..models import Job

log = logging.getLogger(__name__)

# The tasks' names, which jobs/tasks.py registers them under.
RUN_JOB = "jobs.tasks.run_job"
NOTIFY_WEBHOOK = "jobs.tasks.notify_webhook"
DATASET_QUALITY = "jobs.tasks.dataset_quality"


def run(job: Job, task_id: str) -> None:
    """Queue the run of `job` on its queue under `task_id` (the job's celery_task_id, so it can be revoked)."""
    app.send_task(RUN_JOB, args=(job.pk,), task_id=task_id, queue=job.queue)


def check_reachable() -> None:
    """Raise kombu's OperationalError now when the broker cannot be reached, on a connection of its own (a pooled
    one may be a dead one that only the send would find out). A launch asks before it saves anything, so that
    while Redis is down it creates nothing (a 503, jobs/outages.py) instead of a queued job no worker is sent."""
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=CONNECT_TIMEOUT_S)


def revoke(task_id: str) -> None:
    """Drop a queued run before any worker starts it. Only an economy: a worker's claim refuses a job that is no
    longer queued, so a broker that cannot be reached is logged, not raised (the cancel itself is saved)."""
    try:
        app.control.revoke(task_id)
    except OperationalError as exc:
        log.warning("could not revoke task %s: %s", task_id, exc)


def notify_webhook(job_id: int) -> None:
    """Queue the POST of a finished job's status to its webhook (retried by the task while it fails)."""
    app.send_task(NOTIFY_WEBHOOK, args=(job_id,))


def dataset_quality(dataset_id: int, task_id: str) -> None:
    """Queue the computation of a dataset's quality report on the CPU queue (datasets.quality) under `task_id`."""
    app.send_task(DATASET_QUALITY, args=(dataset_id,), task_id=task_id, queue=queues.CPU)
