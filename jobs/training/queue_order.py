"""The order queued jobs start in (Job.QUEUE_ORDER: priority, then place), and what a user does to it: move a
queued job of theirs to the top, up or down, give it a priority; and the queue as its owner's pages see it.

Runs in: both. The web process moves jobs and sets priorities; the workers take turns (take_turn).

Turns, not tickets: every queued job holds exactly one run_job message in the broker (its celery_task_id), sent
when it was launched. A Redis list cannot be reordered, so the order is kept here instead: whichever message a
worker receives, it runs the first queued job of its queue, and the job that held that message takes the
started job's message, still waiting in the broker. So each queued job keeps one message of its own, a move
needs nothing from the broker, and the claim stays one compare-and-set on a queued row (never twice). A message
whose holder is no longer queued (cancelled) runs nothing; one held by a running job is a redelivery or the
reaper's, and takes the job over as before (lifecycle.claim_turn).
"""

from __future__ import annotations

from collections import defaultdict

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import Job
from . import events

MOVES = ("top", "up", "down")


class NotQueued(Exception):
    """The job has left its queue (started, ended): there is nothing to reorder."""


def kinds_on(lane: str) -> list[str]:
    return [kind for kind, name in Job.QUEUES.items() if name == lane]


def queued(lane: str):
    """The queued jobs of a lane (anyone's), in the order they will start."""
    return Job.objects.filter(status=Job.Status.QUEUED, kind__in=kinds_on(lane)).order_by(*Job.QUEUE_ORDER)


def take_turn(holder: Job, task_id: str, worker: str) -> int | None:
    """Claim for `worker` the first queued job of the Celery queue of `holder` (Job.queue), which holds the
    message `task_id`; the holder takes the claimed job's message in exchange. The claimed job's id, or None when
    `holder` no longer holds a queued turn (it was cancelled, or another worker's claim exchanged its message
    meanwhile). Turns are taken within a Celery queue, never across: a job that needs a 40 GB GPU is not started
    by a message a 16 GB worker received."""
    with transaction.atomic():
        # The queue's rows held for the exchange: a concurrent claim or move waits (SQLite: the whole database).
        waiting = Job.objects.filter(status=Job.Status.QUEUED, queue=holder.queue).order_by(*Job.QUEUE_ORDER)
        rows = list(waiting.select_for_update().values_list("pk", "celery_task_id"))
        if (holder.pk, task_id) not in rows:
            return None
        first, first_task = rows[0]
        now = timezone.now()
        Job.objects.filter(pk=first, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker, attempts=F("attempts") + 1,
            celery_task_id=task_id,
        )  # fmt: skip
        if first != holder.pk:
            Job.objects.filter(pk=holder.pk).update(celery_task_id=first_task)
    return first


def move(job: Job, *, to: str | None = None, place: int | None = None) -> None:
    """Move a queued job among its owner's queued jobs of its queue: to the top, one up, one down, or to `place`
    (1 = their first). Only the owner's jobs trade places, each taking the priority and position of the place it
    lands on, so that everyone else's jobs keep theirs. Raises NotQueued when the job is not queued."""
    with transaction.atomic():
        mine = list(queued(job.lane).filter(owner_id=job.owner_id).select_for_update().values_list(
            "pk", "priority", "position"
        ))  # fmt: skip
        order = [pk for pk, _, _ in mine]
        if job.pk not in order:
            raise NotQueued(f"job {job.pk} is {Job.objects.get(pk=job.pk).status}, not queued")
        now = order.index(job.pk)
        order.remove(job.pk)
        if place is not None:
            target = place - 1
        else:
            target = {"top": 0, "up": now - 1, "down": now + 1}[to]
        order.insert(min(max(target, 0), len(order)), job.pk)
        for pk, (was, priority, position) in zip(order, mine, strict=True):
            if pk != was:
                Job.objects.filter(pk=pk).update(priority=priority, position=position)
    broadcast(job.lane)


def check_priority(user, priority: int) -> None:
    """Refuse a priority out of Job.PRIORITIES (ValidationError), or above the default for anyone but staff
    (PermissionDenied): a user may let a job of theirs wait behind everyone's, and only an operator may put one
    before them."""
    low, high = Job.PRIORITIES[0], Job.PRIORITIES[-1]
    if priority not in Job.PRIORITIES:
        raise ValidationError({"priority": f"must be from {low} to {high}"})
    if priority > 0 and not user.is_staff:
        raise PermissionDenied(f"only staff may set a priority above 0 (yours: from {low} to 0)")


def set_priority(job: Job, priority: int, user) -> None:
    """Give a queued job a priority (checked for `user`); raises NotQueued when it is not queued."""
    check_priority(user, priority)
    if not Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(priority=priority):
        raise NotQueued(f"job {job.pk} is {Job.objects.get(pk=job.pk).status}, not queued")
    broadcast(job.lane)


def places(lane: str) -> dict[int, list[dict]]:
    """{owner id: their queued jobs of the lane in order, each {job, kind, priority, position}}, position
    counting everyone's jobs from 1 (the next to start)."""
    found = defaultdict(list)
    rows = queued(lane).values_list("pk", "owner_id", "kind", "priority")
    for position, (pk, owner, kind, priority) in enumerate(rows, start=1):
        found[owner].append({"job": pk, "kind": kind, "priority": priority, "position": position})
    return found


def user_queues(user) -> list[dict]:
    """The user's queued jobs per lane, as queue events carry them: [{queue, jobs}], lanes in Job.QUEUES' order,
    each listed (empty or not)."""
    return [{"queue": lane, "jobs": places(lane).get(user.pk, [])} for lane in dict.fromkeys(Job.QUEUES.values())]


def broadcast(lane: str, *owners: int) -> None:
    """Send each user with queued jobs on `lane` (and `owners`, whose list may just have emptied) their jobs'
    places, over their job lists' group: a move or a start shifts everyone behind it."""
    found = places(lane)
    for owner in dict.fromkeys([*found, *owners]):
        event = {"type": "queue", "queue": lane, "jobs": found.get(owner, [])}
        events.group_send(events.user_jobs_group(owner), event)
