"""A job (or a sweep) can run its final test on a dataset of its own, an official test set such as IMDB's test
folder, instead of holding out a share of the training data."""

from __future__ import annotations

import asyncio

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job
from mlcore.testing import sentiment_rows
from tests.conftest import csv_bytes, watch_job


def _upload(api, name: str, rows) -> dict:
    upload = SimpleUploadedFile(f"{name}.csv", csv_bytes(rows))
    response = api.post("/api/datasets/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db
def test_a_job_names_its_test_dataset_and_a_sweep_gives_it_to_every_job(api):
    train, test = _upload(api, "train", sentiment_rows(40)), _upload(api, "test", sentiment_rows(20, seed=1))
    job = api.post(
        "/api/jobs/", {"kind": "finetune", "dataset": train["id"], "test_dataset": test["id"]}, format="json"
    ).json()
    assert job["test_dataset"] == test["id"]
    payload = {"kind": "finetune", "dataset": train["id"], "test_dataset": test["id"], "grid": {"seed": [1, 2]}}
    sweep = api.post("/api/sweeps/", payload, format="json").json()
    assert sweep["test_dataset"] == test["id"]
    assert set(Job.objects.filter(sweep_id=sweep["id"]).values_list("test_dataset_id", flat=True)) == {test["id"]}


@pytest.mark.django_db
def test_a_test_dataset_with_other_labels_or_of_another_user_is_refused(api, other_api):
    train = _upload(api, "train", sentiment_rows(40))
    three = _upload(api, "three", sentiment_rows(30, num_labels=3))
    job = {"kind": "finetune", "dataset": train["id"]}
    response = api.post("/api/jobs/", job | {"test_dataset": three["id"]}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "test_dataset": ["its labels ['neutral'] are not among the training dataset's ['negative', 'positive']"]
    }
    theirs = _upload(other_api, "theirs", sentiment_rows(20))
    response = api.post("/api/jobs/", job | {"test_dataset": theirs["id"]}, format="json")
    assert response.status_code == 400 and "does not exist" in str(response.json()["test_dataset"])
    assert Job.objects.count() == 0


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_worker_tests_on_the_given_dataset_and_trains_on_all_the_rest(api, tiny_bert, fast_params, celery_worker):
    train, test = _upload(api, "train", sentiment_rows(160)), _upload(api, "test", sentiment_rows(24, seed=7))
    payload = {"kind": "finetune", "dataset": train["id"], "test_dataset": test["id"], "base_model": str(tiny_bert),
               "params": fast_params}  # fmt: skip
    job = api.post("/api/jobs/", payload, format="json").json()

    final = asyncio.run(watch_job(job["id"], api.token, timeout=240))[-1]

    assert final["status"] == "succeeded", final["error"]
    metrics = api.get(f"/api/models/{final['result_model']}/").json()["metrics"]
    report = metrics["test/report"]
    assert sum(c["support"] for c in report["per_class"].values()) == 24  # the given rows, all of them
    assert sum(map(sum, report["confusion_matrix"])) == 24
    assert metrics["test/accuracy"] > 0.8
    page = api.get(f"/api/jobs/{job['id']}/").json()
    assert page["test_dataset"] == test["id"]


@pytest.mark.django_db
def test_the_launch_form_takes_a_test_dataset_and_the_job_page_shows_it(api, logged_in):
    train, test = _upload(api, "train", sentiment_rows(40)), _upload(api, "imdb-test", sentiment_rows(20, seed=1))
    form = {
        "kind": "finetune", "dataset": train["id"], "test_dataset": test["id"], "base_model": "all-MiniLM-L6-v2",
        "batch_size": "16", "learning_rate": "2e-5", "epochs": "1", "max_length": "64", "seed": "42",
        "truncation": "head", "scheduler": "exponential", "warmup_ratio": "0", "weight_decay": "0",
    }  # fmt: skip
    response = logged_in.post("/jobs/new/", form)
    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/" and job.test_dataset_id == test["id"]
    assert '<dd id="test-dataset">imdb-test</dd>' in logged_in.get(f"/jobs/{job.pk}/").content.decode()
