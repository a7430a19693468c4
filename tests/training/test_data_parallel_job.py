"""A job with devices=2 runs in the real worker as two gloo processes (mlcore.parallel): the worker's own process is
rank 0, so its metrics stream and its model is stored as for one device, and the other rank is gone when it ends."""

from __future__ import annotations

import asyncio

import psutil
import pytest

from jobs.models import ModelRecord
from tests.conftest import watch_job
from tests.mlcore.test_data_parallel import _ranks as ranks_under

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _ranks(worker) -> list[psutil.Process]:
    """Other ranks still running under the worker (its pool process's children running mlcore.parallel)."""
    return ranks_under(worker.pid)


def test_a_two_device_job_streams_its_metrics_and_stores_its_model(api, sentiment_csv, tiny_bert, fast_params,
                                                                   celery_worker):  # fmt: skip
    dataset = api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()
    params = fast_params | {"devices": 2, "device": "cpu"}
    payload = {"kind": "finetune", "dataset": dataset["id"], "base_model": str(tiny_bert), "params": params}
    response = api.post("/api/jobs/", payload, format="json")
    assert response.status_code == 201, response.content
    messages = asyncio.run(watch_job(response.json()["id"], api.token))
    job = api.get(f"/api/jobs/{response.json()['id']}/").json()

    assert job["status"] == "succeeded", job["error"]
    assert job["params"]["devices"] == 2
    metrics = [m for m in messages if m["type"] == "metric"]
    assert [m["seq"] for m in metrics] == list(range(1, len(metrics) + 1))  # each point once, from rank 0 alone
    train = [m for m in metrics if m["kind"] == "train"]
    # 128 training rows in global batches of 16 for 5 epochs: the one-device step count, each step once.
    assert [m["step"] for m in train] == list(range(1, 41))
    # Each step's rows are the global batch's, summed over both ranks.
    assert all(m["values"]["train/samples_per_s"] > 0 for m in train)
    assert [m["kind"] for m in metrics].count("val") == 5 and metrics[-1]["kind"] == "test"
    record = ModelRecord.objects.get(pk=job["result_model"])
    assert record.params["devices"] == 2 and record.metrics["test/accuracy"] > 0.8
    assert _ranks(celery_worker) == []
