"""The job websocket: authorisation, catch-up from a seq without gaps or duplicates, live events."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile

from config.asgi import application
from jobs.datasets import services as dataset_services
from jobs.models import Job
from jobs.training import events, launch, lifecycle
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = [(b"origin", b"http://testserver")]


@pytest.fixture
def job(user):
    upload = SimpleUploadedFile("a.csv", csv_bytes([("good", "pos"), ("bad", "neg")]))
    dataset = dataset_services.create_dataset(user, "d", upload)
    return Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="running")


def _connect(path: str, headers=ORIGIN) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=headers)


def test_anonymous_users_and_other_users_are_refused(job, other_api):
    async def attempt(path):
        communicator = _connect(path)
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert asyncio.run(attempt(f"/ws/jobs/{job.pk}/")) == (False, 4403)
    assert asyncio.run(attempt(f"/ws/jobs/{job.pk}/?token={other_api.token}")) == (False, 4403)
    assert asyncio.run(attempt(f"/ws/jobs/{job.pk}/?token=not-a-token")) == (False, 4403)


def test_a_foreign_origin_is_refused(job, api):
    async def attempt():
        communicator = _connect(f"/ws/jobs/{job.pk}/?token={api.token}", headers=[(b"origin", b"http://evil.test")])
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    assert asyncio.run(attempt()) is False


def test_a_client_catches_up_after_a_seq_then_gets_live_points_once(job, api):
    for seq in range(1, 6):
        lifecycle.record_metric(job, seq=seq, step=seq, kind="train", values={"train/loss": float(seq)})

    async def scenario():
        communicator = _connect(f"/ws/jobs/{job.pk}/?after=2&token={api.token}")
        assert (await communicator.connect())[0]
        received = [await communicator.receive_json_from() for _ in range(4)]  # seq 3, 4, 5 + status
        # A duplicate of seq 5 (e.g. a retried broadcast) is dropped; seq 6 arrives live.
        await sync_to_async(events.group_send)(events.job_group(job.pk), {
            "type": "metric", "job": job.pk, "seq": 5, "step": 5, "kind": "train", "values": {}})
        await sync_to_async(lifecycle.record_metric)(job, seq=6, step=6, kind="train", values={"train/loss": 6.0})
        received.append(await communicator.receive_json_from())
        await sync_to_async(lifecycle.finish_job)(job, "succeeded")
        received.append(await communicator.receive_json_from())
        assert await communicator.receive_nothing()
        await communicator.disconnect()
        return received

    received = asyncio.run(scenario())
    assert [m["seq"] for m in received[:3]] == [3, 4, 5]
    assert received[3] == {**received[3], "type": "status", "status": "running"}
    assert received[4]["seq"] == 6
    assert received[4]["values"] == {"train/loss": 6.0}
    assert received[5]["type"] == "status" and received[5]["status"] == "succeeded"


def test_the_job_list_socket_announces_status_changes(job, api):
    async def scenario():
        communicator = _connect(f"/ws/jobs/?token={api.token}")
        assert (await communicator.connect())[0]
        await sync_to_async(launch.request_cancel)(job)
        message = await communicator.receive_json_from()
        await communicator.disconnect()
        return message

    message = asyncio.run(scenario())
    assert (message["job"], message["type"]) == (job.pk, "status")
    assert message["status"] == "running"  # a running job is asked to stop; the worker ends it
    job.refresh_from_db()
    assert job.cancel_requested is True
