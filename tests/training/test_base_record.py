"""A fine-tune may start from one of the user's own stored models, chosen by id (base_record): never by a server
path, and never another user's."""

from __future__ import annotations

import asyncio

import pytest
from django.core.exceptions import ValidationError

from jobs.models import Job
from jobs.registry.services import delete_model
from tests.conftest import watch_job

pytestmark = pytest.mark.django_db


def _launch(client, **fields):
    return client.post("/api/jobs/", {"kind": "finetune", **fields}, format="json")


@pytest.mark.django_db(transaction=True)
def test_a_fine_tune_starts_from_ones_own_stored_model(api, trained_model, fast_params, celery_worker):
    response = _launch(api, dataset=trained_model.dataset_id, base_record=trained_model.pk, params=fast_params)
    assert response.status_code == 201
    body = response.json()
    assert (body["base_record"], body["base_model"]) == (trained_model.pk, trained_model.name)

    messages = asyncio.run(watch_job(body["id"], api.token))  # the real worker trains it
    job = Job.objects.select_related("result_model").get(pk=body["id"])
    assert messages[-1]["status"] == job.status == "succeeded", job.error
    # The tiny stored model, not the bundled MiniLM (22.7M parameters), is what it trained from.
    assert job.result_model.num_parameters < 1_000_000  # the tiny BERT has ~41,000
    with pytest.raises(ValidationError, match="jobs use this model"):
        delete_model(trained_model)


def test_another_users_model_cannot_be_chosen(other_api, trained_model, sentiment_csv):
    dataset = other_api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()["id"]
    response = _launch(other_api, dataset=dataset, base_record=trained_model.pk)
    assert response.status_code == 400 and "does not exist" in response.json()["base_record"][0]


def test_a_base_record_with_a_base_model_or_another_kind_or_other_labels_is_refused(api, trained_model, sentiment_csv):
    both = _launch(api, dataset=trained_model.dataset_id, base_record=trained_model.pk, base_model="all-MiniLM-L6-v2")
    assert both.status_code == 400 and "not both" in both.json()["base_record"][0]
    distil = api.post("/api/jobs/", {
        "kind": "distill", "dataset": trained_model.dataset_id, "teacher": trained_model.pk,
        "base_record": trained_model.pk,
    }, format="json")  # fmt: skip
    assert distil.status_code == 400 and "base_record" in distil.json()
    labels = api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()
    other = api.post(
        "/api/datasets/", {"file": _three_labels()}, format="multipart"
    ).json()["id"]
    refused = _launch(api, dataset=other, base_record=trained_model.pk)
    assert refused.status_code == 400 and "differ from the model's" in refused.json()["dataset"][0]
    assert labels["labels"] == sorted(trained_model.label_names)


def _three_labels():
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import csv_bytes

    rows = [("good", "pos"), ("bad", "neg"), ("so-so", "mid")] * 4
    return SimpleUploadedFile("three.csv", csv_bytes(rows))
