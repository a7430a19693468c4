"""A worker process that dies mid-job: the message comes back (late ack) and the job ends failed with a
clear message instead of staying "running" forever."""

from __future__ import annotations

import asyncio
import signal

import psutil
import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from jobs.models import Job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_job_whose_worker_process_is_killed_ends_failed(api, sentiment_csv, tiny_bert, fast_params, celery_worker):
    dataset = api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()
    params = dict(fast_params, epochs=50, batch_size=4)
    job = api.post(
        "/api/jobs/", {"kind": "finetune", "dataset": dataset["id"], "base_model": str(tiny_bert), "params": params},
        format="json",
    ).json()

    async def kill_once_running():
        communicator = WebsocketCommunicator(
            application, f"/ws/jobs/{job['id']}/?token={api.token}", headers=[(b"origin", b"http://testserver")]
        )
        assert (await communicator.connect(timeout=10))[0]
        killed = []
        async with asyncio.timeout(240):
            while True:
                message = await communicator.receive_json_from(timeout=240)
                if message["type"] == "metric" and not killed:
                    # The prefork pool's child runs the task; the main worker process survives and notices.
                    for child in psutil.Process(celery_worker.pid).children():
                        child.send_signal(signal.SIGKILL)
                        killed.append(child.pid)
                if message["type"] == "status" and message["status"] in ("succeeded", "failed", "cancelled"):
                    await communicator.disconnect()
                    return killed, message

    killed, final = asyncio.run(kill_once_running())
    assert killed
    assert final["status"] == "failed"
    assert "stopped before it finished" in final["error"]
    stored = Job.objects.get(pk=job["id"])
    assert stored.status == "failed" and stored.finished_at is not None and stored.result_model is None
