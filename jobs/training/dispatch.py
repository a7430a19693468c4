"""Sending work to the Celery workers, by task name: the web side never imports the tasks module (which imports
the worker's code), and each job goes to the queue its kind names (Job.queue).

Runs in: the web process and the workers. A leaf: it imports nothing of jobs but the models.
"""

from __future__ import annotations

from config.celery import app

from ..models import Job

# The tasks' names, which jobs/tasks.py registers them under.
RUN_JOB = "jobs.tasks.run_job"
NOTIFY_WEBHOOK = "jobs.tasks.notify_webhook"


def run(job: Job, task_id: str) -> None:
    """Queue the run of `job` on its queue under `task_id` (the job's celery_task_id, so it can be revoked)."""
    app.send_task(RUN_JOB, args=(job.pk,), task_id=task_id, queue=job.queue)


def revoke(task_id: str) -> None:
    """Drop a queued run before any worker starts it."""
    app.control.revoke(task_id)


def notify_webhook(job_id: int) -> None:
    """Queue the POST of a finished job's status to its webhook (retried by the task while it fails)."""
    app.send_task(NOTIFY_WEBHOOK, args=(job_id,))
