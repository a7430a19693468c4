"""What a job's pages hear: the Channels groups a job's events go to, and sending them.

Runs in: the web process and the workers. A leaf: it imports nothing of jobs but the models. Rows are saved
before their events are sent (the consumers read history from the database and drop what they already sent).
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from ..models import Job, MetricPoint

log = logging.getLogger(__name__)


def job_group(job_id: int) -> str:
    """Every open page of one job."""
    return f"job-{job_id}"


def user_jobs_group(user_id: int) -> str:
    """Every open job list of one user."""
    return f"user-{user_id}-jobs"


def broadcast_status(job: Job) -> None:
    """Send the job's status to its pages and to its owner's job lists."""
    event = job.to_event()
    group_send(job_group(job.pk), event)
    group_send(user_jobs_group(job.owner_id), event)


def broadcast_metrics(job_id: int, points: list[MetricPoint]) -> None:
    """Send saved metric points, in order, to the job's pages."""
    group_send(job_group(job_id), *(point.to_event() for point in points))


def group_send(group: str, *events: dict) -> None:
    """Send the events to the group, in order, in one trip into async code (each trip costs about 0.5 ms)."""
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        for event in events:
            await layer.group_send(group, {"type": "job.event", "event": event})

    try:
        async_to_sync(send_all)()
    except Exception:  # the rows are saved; a Redis hiccup must not fail the job
        log.warning("could not broadcast to %s", group, exc_info=True)
