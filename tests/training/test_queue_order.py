"""The order queued jobs start in: priority first, then place; a user's moves trade places among their own jobs
only; and a run_job message is a turn on its queue: it starts the first queued job, whichever job it was sent
for, and never one job twice."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from jobs.datasets import services as dataset_services
from jobs.models import Job
from jobs.training import lifecycle, queue_order
from jobs.training.events import group_send, user_jobs_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def _queued(owner, dataset, name: str, **fields) -> Job:
    """A queued fine-tune holding the message `t-<name>`, as create_job leaves one."""
    return Job.objects.create(
        owner=owner, kind="finetune", dataset=dataset, params={}, celery_task_id=f"t-{name}", **fields
    )


def _order(queue: str = "gpu") -> list[int]:
    return list(queue_order.queued(queue).values_list("pk", flat=True))


def test_a_new_job_takes_its_id_as_its_place(user, dataset):
    job = _queued(user, dataset, "a")
    assert (job.priority, job.position) == (0, job.pk)
    assert Job.objects.get(pk=job.pk).position == job.pk


def test_jobs_start_by_priority_then_place(user, other_user, dataset):
    a = _queued(user, dataset, "a")
    b = _queued(other_user, dataset, "b")
    c = _queued(user, dataset, "c", priority=-1)  # lets everyone's jobs go first
    d = _queued(other_user, dataset, "d", priority=2)  # an operator's urgent one
    e = _queued(user, dataset, "e")
    assert _order() == [d.pk, a.pk, b.pk, e.pk, c.pk]
    assert [Job.objects.get(pk=j.pk).jobs_ahead() for j in (d, a, b, e, c)] == [0, 1, 2, 3, 4]


def test_each_message_starts_the_first_queued_job_and_its_holder_takes_the_started_jobs_message(user, dataset):
    a, b, c = (_queued(user, dataset, name) for name in "abc")
    Job.objects.filter(pk=c.pk).update(priority=1)

    started = lifecycle.claim_turn("t-a", "w")  # sent for a, but c is first
    assert started.pk == c.pk and started.status == "running" and started.celery_task_id == "t-a"
    assert Job.objects.get(pk=a.pk).celery_task_id == "t-c"  # still waiting in the broker

    assert lifecycle.claim_turn("t-b", "w").pk == a.pk
    assert Job.objects.get(pk=b.pk).celery_task_id == "t-c"
    assert lifecycle.claim_turn("t-c", "w").pk == b.pk
    # Every job ran once, each under the message that started it; no message is left without a run.
    rows = Job.objects.order_by("started_at").values_list("pk", "status", "celery_task_id", "attempts")
    assert list(rows) == [(c.pk, "running", "t-a", 1), (a.pk, "running", "t-b", 1), (b.pk, "running", "t-c", 1)]


def test_a_training_message_never_starts_a_file_classification(user, dataset, trained_model):
    classify = Job.objects.create(owner=user, kind="classify", model=trained_model, params={}, celery_task_id="t-x")
    Job.objects.filter(pk=classify.pk).update(priority=5)
    job = _queued(user, dataset, "a")
    assert lifecycle.claim_turn("t-a", "w").pk == job.pk
    assert Job.objects.get(pk=classify.pk).status == "queued"
    assert lifecycle.claim_turn("t-x", "w").pk == classify.pk


def test_the_message_of_a_cancelled_job_starts_nothing(user, dataset):
    a, b = _queued(user, dataset, "a"), _queued(user, dataset, "b")
    assert a.request_cancel() is True
    assert lifecycle.claim_turn("t-a", "w") is None
    assert Job.objects.get(pk=b.pk).status == "queued"
    assert lifecycle.claim_turn("t-b", "w").pk == b.pk
    assert lifecycle.claim_turn("t-unknown", "w") is None


def test_a_message_delivered_twice_runs_its_job_once_and_a_redelivery_takes_it_over(user, dataset):
    job = _queued(user, dataset, "a")
    assert lifecycle.claim_turn("t-a", "first").pk == job.pk
    assert lifecycle.claim_turn("t-a", "second") is None  # a duplicate while the first worker lives
    taken = lifecycle.claim_turn("t-a", "second", redelivered=True)  # the first worker's process died
    assert (taken.pk, taken.worker, taken.attempts) == (job.pk, "second", 2)
    lifecycle.finish_job(taken, Job.Status.SUCCEEDED)
    assert lifecycle.claim_turn("t-a", "third", redelivered=True) is None


@pytest.fixture
def mine_and_theirs(user, other_user, dataset):
    """The user's jobs u1..u4 and someone else's o1 between u1 and u2, in the queue in that order."""
    u1 = _queued(user, dataset, "u1")
    o1 = _queued(other_user, dataset, "o1")
    u2, u3, u4 = (_queued(user, dataset, name) for name in ("u2", "u3", "u4"))
    return u1, o1, u2, u3, u4


def test_moves_trade_places_among_the_owners_jobs_and_leave_everyone_elses(mine_and_theirs):
    u1, o1, u2, u3, u4 = mine_and_theirs
    queue_order.move(u4, to="top")
    assert _order() == [u4.pk, o1.pk, u1.pk, u2.pk, u3.pk]
    queue_order.move(u2, to="up")
    assert _order() == [u4.pk, o1.pk, u2.pk, u1.pk, u3.pk]
    queue_order.move(u4, to="down")
    assert _order() == [u2.pk, o1.pk, u4.pk, u1.pk, u3.pk]
    queue_order.move(u3, place=1)
    assert _order() == [u3.pk, o1.pk, u2.pk, u4.pk, u1.pk]
    queue_order.move(u3, to="up")  # already first of theirs, and last stays last
    queue_order.move(u1, to="down")
    assert _order() == [u3.pk, o1.pk, u2.pk, u4.pk, u1.pk]
    # The other user's job kept its slot: second, at its own id.
    assert Job.objects.get(pk=o1.pk).position == o1.pk
    assert sorted(Job.objects.exclude(pk=o1.pk).values_list("position", flat=True)) == [u1.pk, u2.pk, u3.pk, u4.pk]


def test_a_move_hands_the_job_the_priority_of_the_place_it_lands_on(user, dataset):
    first = _queued(user, dataset, "a", priority=-2)
    second = _queued(user, dataset, "b", priority=-5)
    queue_order.move(second, to="top")
    rows = Job.objects.order_by("pk").values_list("pk", "priority", "position")
    assert list(rows) == [(first.pk, -5, second.pk), (second.pk, -2, first.pk)]
    assert _order() == [second.pk, first.pk]


def test_a_job_that_left_the_queue_cannot_be_moved_or_reprioritised(user, dataset):
    job = _queued(user, dataset, "a")
    lifecycle.claim_turn("t-a", "w")
    with pytest.raises(queue_order.NotQueued):
        queue_order.move(job, to="top")
    with pytest.raises(queue_order.NotQueued):
        queue_order.set_priority(job, -1, user)


def test_only_staff_may_raise_a_priority_above_the_default(user, dataset, admin_user):
    from django.core.exceptions import PermissionDenied, ValidationError

    job = _queued(user, dataset, "a")
    with pytest.raises(PermissionDenied, match="only staff"):
        queue_order.set_priority(job, 1, user)
    with pytest.raises(ValidationError, match="from -10 to 10"):
        queue_order.set_priority(job, -11, admin_user)
    queue_order.set_priority(job, -10, user)
    queue_order.set_priority(job, 10, admin_user)
    assert Job.objects.get(pk=job.pk).priority == 10


def test_a_move_and_a_start_tell_every_owner_with_queued_jobs_their_places(mine_and_theirs, user, other_user):
    u1, o1, u2, u3, u4 = mine_and_theirs
    layer = get_channel_layer()
    channels = {}
    for who in (user, other_user):
        channels[who.pk] = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(user_jobs_group(who.pk), channels[who.pk])

    def heard(who) -> list[dict]:
        group_send(user_jobs_group(who.pk), {"type": "marker"})  # sent last, heard last: no waiting
        found = []
        while not found or found[-1]["type"] != "marker":
            found.append(async_to_sync(layer.receive)(channels[who.pk])["event"])
        return [m for m in found[:-1] if m["type"] == "queue"]

    def place(job, position):
        return {"job": job.pk, "kind": "finetune", "priority": 0, "position": position}

    queue_order.move(u3, to="top")
    assert heard(user) == [
        {"type": "queue", "queue": "gpu", "jobs": [place(u3, 1), place(u1, 3), place(u2, 4), place(u4, 5)]}
    ]
    assert heard(other_user) == [{"type": "queue", "queue": "gpu", "jobs": [place(o1, 2)]}]

    lifecycle.claim_turn("t-o1", "w")  # starts u3, the first: everyone behind it moves up one
    assert heard(user) == [{"type": "queue", "queue": "gpu", "jobs": [place(u1, 2), place(u2, 3), place(u4, 4)]}]
    assert heard(other_user) == [{"type": "queue", "queue": "gpu", "jobs": [place(o1, 1)]}]
