"""A sweep end to end: one API call queues a job per learning rate, the real Celery worker trains them all,
and the sweep names the one that learned as its best."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import watch_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_learning_rate_sweep_trains_every_job_and_picks_the_one_that_learned(
    api, sentiment_csv, tiny_bert, fast_params, celery_worker
):
    dataset = api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()
    fixed = {k: v for k, v in fast_params.items() if k != "learning_rate"}
    payload = {"kind": "finetune", "dataset": dataset["id"], "base_model": str(tiny_bert), "params": fixed,
               "grid": {"learning_rate": [1e-7, fast_params["learning_rate"]]}}  # fmt: skip
    response = api.post("/api/sweeps/", payload, format="json")
    assert response.status_code == 201, response.content
    sweep = response.json()
    stalled, learning = [run["job"] for run in sweep["runs"]["runs"]]

    for job in (stalled, learning):
        final = asyncio.run(watch_job(job, api.token, timeout=240))[-1]
        assert final["status"] == "succeeded", final["error"]

    runs = api.get(f"/api/sweeps/{sweep['id']}/").json()["runs"]
    assert runs["finished"] and runs["counts"]["succeeded"] == 2
    assert runs["best"] == learning
    by_job = {run["job"]: run for run in runs["runs"]}
    assert by_job[learning]["valid_accuracy"] > by_job[stalled]["valid_accuracy"] + 0.25  # here 0.94 vs 0.50
    assert by_job[learning]["values"] == {"learning_rate": fast_params["learning_rate"]}
    models = [api.get(f"/api/models/{by_job[j]['model']}/").json() for j in (stalled, learning)]
    assert [m["params"]["learning_rate"] for m in models] == [1e-7, fast_params["learning_rate"]]
    assert {m["params"]["epochs"] for m in models} == {fast_params["epochs"]}
