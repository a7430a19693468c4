"""A worker process that dies mid-job: the message comes back (late ack), another process takes the job over
and resumes it from its last checkpoint, and the job succeeds instead of staying "running" forever."""

from __future__ import annotations

import asyncio
import signal

import psutil
import pytest

from jobs.files import checkpoint_dir
from jobs.models import Job, MetricPoint
from tests.conftest import job_socket, launch_finetune, watch_job
from tests.polling import until

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
    # The second run resumed from the checkpoint at step 20 and dropped what the first reported past it: each
    # step appears once in the history, and the drop is on the job for pages that showed those points.
    steps = list(stored.metrics.filter(kind="train").order_by("seq").values_list("step", flat=True))
    assert steps == list(range(1, 97))
    assert [step for step, _ in stored.rewinds] == [20]
    vals = list(stored.metrics.filter(kind="val").values_list("step", flat=True))
    assert sorted(vals) == sorted(set(vals)) == [32, 64, 96]
    assert not checkpoint_dir(stored.pk).exists()  # removed once the job ended


def test_a_worker_lost_after_training_resumes_from_the_saved_model_without_training_again(
    api, sentiment_csv, tiny_bert, fast_params, celery_worker
):
    params = dict(fast_params, epochs=1, batch_size=8, checkpoint_every=4)  # 16 steps
    job = launch_finetune(api, sentiment_csv, tiny_bert, params)
    until(  # training is over, the model saved
        lambda: Job.objects.get(pk=job["id"]).phase == "measuring CPU speed",
        "the job reaches its measuring phase",
        timeout=240,
        interval=0.02,
    )
    points_before = list(MetricPoint.objects.filter(job_id=job["id"]).order_by("seq").values_list("seq", "step"))
    (pool,) = psutil.Process(celery_worker.pid).children()
    pool.send_signal(signal.SIGKILL)

    final = asyncio.run(watch_job(job["id"], api.token))[-1]
    assert final["status"] == "succeeded", final["error"]
    stored = Job.objects.get(pk=job["id"])
    assert stored.attempts == 2 and stored.result_model is not None
    # Nothing was trained twice: the history is the first run's, untouched, and no rewind was needed.
    points_after = list(MetricPoint.objects.filter(job_id=job["id"]).order_by("seq").values_list("seq", "step"))
    assert points_after == points_before and stored.rewinds == []
    assert sorted(step for (step,) in stored.metrics.filter(kind="train").values_list("step")) == list(range(1, 17))
    # The record is the first run's model, measured by the second: its test score is the one reported in training.
    (test_point,) = stored.metrics.filter(kind="test").values_list("values", flat=True)
    metrics = stored.result_model.metrics
    assert metrics["test/accuracy"] == test_point["test/accuracy"] and "int8" in metrics
    assert not checkpoint_dir(stored.pk).exists()
