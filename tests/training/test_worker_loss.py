"""A worker process that dies mid-job: the message comes back (late ack), another process takes the job over
and resumes it from its last checkpoint, and the job succeeds instead of staying "running" forever."""

from __future__ import annotations

import asyncio
import signal

import psutil
import pytest

from jobs.models import Job
from tests.conftest import job_socket, launch_finetune

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_job_whose_worker_process_is_killed_resumes_from_its_checkpoint(
    api, sentiment_csv, tiny_bert, fast_params, celery_worker
):
    params = dict(fast_params, epochs=3, batch_size=4, checkpoint_every=20)  # 32 steps an epoch
    job = launch_finetune(api, sentiment_csv, tiny_bert, params)

    async def kill_once_running():
        communicator = job_socket(job["id"], api.token)
        assert (await communicator.connect(timeout=10))[0]
        killed = []
        async with asyncio.timeout(300):
            while True:
                message = await communicator.receive_json_from(timeout=60)
                if message["type"] == "metric" and message["step"] == 25 and not killed:
                    # The prefork pool's child runs the task; the main worker process survives and notices.
                    for child in psutil.Process(celery_worker.pid).children():
                        child.send_signal(signal.SIGKILL)
                        killed.append(child.pid)
                if message["type"] == "status" and message["status"] in ("succeeded", "failed", "cancelled"):
                    await communicator.disconnect()
                    return killed, message

    killed, final = asyncio.run(kill_once_running())
    assert killed
    assert final["status"] == "succeeded", final["error"]
    stored = Job.objects.get(pk=job["id"])
    assert stored.attempts == 2 and stored.result_model is not None
    # The second run starts after the checkpoint at step 20: steps 21.. are reported again, none before.
    steps = list(stored.metrics.filter(kind="train").order_by("seq").values_list("step", flat=True))
    restart = next(i for i in range(1, len(steps)) if steps[i] <= steps[i - 1])
    assert steps[restart] == 21
    assert steps[-1] == 96

