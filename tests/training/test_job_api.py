"""Launching and cancelling jobs through the API (no worker: on_commit never fires inside a test transaction)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job, MetricPoint
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db

ROWS = [("good movie", "pos"), ("bad movie", "neg")]


@pytest.fixture
def dataset(api):
    return api.post("/api/datasets/", {"file": SimpleUploadedFile("a.csv", csv_bytes(ROWS))}, format="multipart").json()


def test_a_finetune_job_is_queued_with_the_studys_defaults(api, dataset):
    response = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json")
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["status"], job["base_model"], job["progress"]) == ("queued", "all-MiniLM-L6-v2", 0.0)
    params = job["params"]
    assert (params["batch_size"], params["learning_rate"], params["lr_gamma"], params["lr_step_every"]) == (
        64, 2e-5, 0.96, 10,
    )
    assert (params["epochs"], params["max_length"]) == (1, 128)
    assert Job.objects.get().celery_task_id


@pytest.mark.parametrize(
    "payload, field, message",
    [
        ({"kind": "finetune", "params": {"lr": 0.1}}, "params", "unknown parameter 'lr'"),
        ({"kind": "finetune", "params": {"batch_size": 0}}, "params", "batch_size"),
        ({"kind": "finetune", "base_model": "./no/such/folder"}, "base_model", "is not a model this server offers"),
        ({"kind": "distill"}, "teacher", "needs a teacher"),
        ({"kind": "translate"}, "kind", "not a valid choice"),
    ],
)
def test_a_bad_job_request_gets_a_400_and_no_job(api, dataset, payload, field, message):
    response = api.post("/api/jobs/", {"dataset": dataset["id"], **payload}, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert Job.objects.count() == 0


def test_a_distill_job_refuses_a_dataset_with_other_labels(api, trained_model):
    rows = [("good movie", "yes"), ("bad movie", "no")]
    other = api.post("/api/datasets/", {"file": SimpleUploadedFile("o.csv", csv_bytes(rows))}, format="multipart")
    response = api.post(
        "/api/jobs/", {"kind": "distill", "dataset": other.json()["id"], "teacher": trained_model.pk}, format="json"
    )
    assert response.status_code == 400
    assert "differ from the teacher" in str(response.json()["dataset"])


def test_cancelling_a_queued_job_cancels_it_at_once(api, dataset):
    job = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json").json()
    response = api.post(f"/api/jobs/{job['id']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert api.post(f"/api/jobs/{job['id']}/cancel/").status_code == 400


def test_metrics_after_seq_returns_the_later_points_in_order(api, dataset):
    job = Job.objects.get(pk=api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json")
                          .json()["id"])
    for seq in (3, 1, 2, 4):
        MetricPoint.objects.create(job=job, seq=seq, step=seq, kind="train", values={"train/loss": 1.0 / seq})
    points = api.get(f"/api/jobs/{job.pk}/metrics/?after=2").json()
    assert [p["seq"] for p in points] == [3, 4]
    assert points[0]["values"]["train/loss"] == pytest.approx(1 / 3)
    assert api.get(f"/api/jobs/{job.pk}/metrics/?after=x").status_code == 400


def test_the_job_list_takes_a_fixed_number_of_queries(api, dataset, django_assert_max_num_queries):
    for _ in range(5):
        api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json")
    with django_assert_max_num_queries(4):
        assert len(api.get("/api/jobs/").json()["results"]) == 5
