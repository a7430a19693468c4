"""A dataset's quality report is computed by a real worker after upload and read from the API and the page; a
fine-tune in the worker stores the suspected label errors it found with its model. Other users get 404,
anonymous callers 401."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from celery.result import AsyncResult
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from config.celery import app
from jobs.models import DatasetQuality, LabelIssues, ModelRecord
from mlcore.testing import sentiment_rows
from tests.conftest import csv_bytes, watch_job
from tests.mlcore.test_quality_report import ROWS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _upload(api, rows, name="messy.csv") -> dict:
    response = api.post("/api/datasets/", {"file": SimpleUploadedFile(name, csv_bytes(rows))}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def _computed(dataset_id: int) -> DatasetQuality:
    """The report once the worker's task, queued by the upload, has run (its result awaited, no polling)."""
    quality = DatasetQuality.objects.get(dataset_id=dataset_id)
    assert AsyncResult(quality.task_id, app=app).get(timeout=120) == "ready"
    quality.refresh_from_db()
    return quality


def test_the_worker_computes_the_report_after_an_upload_and_the_api_and_page_show_it(
    api, other_api, logged_in, celery_worker
):
    dataset = _upload(api, ROWS)
    quality = _computed(dataset["id"])
    assert quality.status == "ready" and quality.computed_at is not None

    body = api.get(f"/api/datasets/{dataset['id']}/quality/").json()
    assert body["status"] == "ready" and body["report"]["rows"] == 13
    rows = {name: finding["rows"] for name, finding in body["report"]["findings"].items()}
    assert rows == {
        "exact_duplicates": [3, 4], "near_duplicates": [1, 2, 5, 6], "conflicting_labels": [5, 6],
        "markup": [1, 8, 9], "short": [1, 2, 7, 8], "long": [10], "truncated": [10],
    }  # fmt: skip
    assert body["report"]["imbalance"]["ratio"] == 1.17

    answer = api.get(f"/api/datasets/{dataset['id']}/quality/csv/", {"finding": "conflicting_labels"})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(answer.content.decode())))
    assert [line[:3] for line in lines] == [["row", "label", "group"], ["5", "pos", "1"], ["6", "neg", "1"]]
    assert lines[2][4] == "the plot was FINE and the cast was good"
    bad = api.get(f"/api/datasets/{dataset['id']}/quality/csv/", {"finding": "nonsense"})
    assert bad.status_code == 400 and "finding" in bad.json()

    page = logged_in.get(f"/datasets/{dataset['id']}/").content.decode()
    assert 'id="finding-near_duplicates" data-count="4"' in page
    assert "rows 1, 2: <q>Great  movie&lt;br /&gt;</q>" in page
    assert f"/api/datasets/{dataset['id']}/quality/csv/?finding=markup" in page

    base = f"/api/datasets/{dataset['id']}/quality/"
    for url in (base, f"{base}csv/?finding=markup"):
        assert other_api.get(url).status_code == 404
        assert APIClient().get(url).status_code == 401
    other_page = APIClient()
    other_page.force_login(User.objects.get(username="bob"))
    assert other_page.get(f"/datasets/{dataset['id']}/").status_code == 404


def test_a_fine_tune_stores_the_suspected_label_errors_with_its_model(api, other_api, logged_in, tiny_bert,
                                                                    fast_params, celery_worker):
    rows = sentiment_rows(160)
    flipped = [7, 45, 101]  # 0-based: these rows get the other label
    rows = [(t, {"positive": "negative", "negative": "positive"}[y] if i in flipped else y) for i, (t, y) in
            enumerate(rows)]  # fmt: skip
    dataset = _upload(api, rows, "reviews.csv")
    payload = {"kind": "finetune", "dataset": dataset["id"], "base_model": str(tiny_bert), "params": fast_params}
    job = api.post("/api/jobs/", payload, format="json").json()
    asyncio.run(watch_job(job["id"], api.token))
    job = api.get(f"/api/jobs/{job['id']}/").json()
    assert job["status"] == "succeeded", job["error"]

    record = ModelRecord.objects.get(pk=job["result_model"])
    issues = LabelIssues.objects.get(model=record)
    assert issues.dataset_id == dataset["id"]
    assert issues.summary["rows"] == 160 and issues.summary["folds"] == 5
    assert issues.summary["count"] == len(issues.suspects)
    assert set(issues.summary["thresholds"]) == {"negative", "positive"}
    for suspect in issues.suspects:  # each names a real row, its given label, and the other as the suggestion
        given = rows[suspect["row"] - 1][1]
        assert suspect["given"] == given and suspect["suggested"] != given
        assert suspect["text"] == rows[suspect["row"] - 1][0][:300]
        assert suspect["confidence"] < issues.summary["thresholds"][given]
    confidences = [s["confidence"] for s in issues.suspects]
    assert confidences == sorted(confidences)

    body = api.get(f"/api/models/{record.pk}/label-issues/").json()
    assert body["summary"] == issues.summary and body["suspects"] == issues.suspects
    answer = api.get(f"/api/models/{record.pk}/label-issues/csv/")
    lines = list(csv.reader(io.StringIO(answer.content.decode())))
    assert lines[0] == ["row", "label", "suggested", "confidence", "suggested_probability", "words", "text"]
    assert [int(line[0]) for line in lines[1:]] == [s["row"] for s in issues.suspects]
    assert other_api.get(f"/api/models/{record.pk}/label-issues/").status_code == 404
    assert other_api.get(f"/api/models/{record.pk}/label-issues/csv/").status_code == 404
    assert APIClient().get(f"/api/models/{record.pk}/label-issues/").status_code == 401

    page = logged_in.get(f"/datasets/{dataset['id']}/").content.decode()
    assert f"/models/{record.pk}/#label-issues" in page and f"found by model {record.name}" in page
    model_page = logged_in.get(f"/models/{record.pk}/").content.decode()
    assert 'id="label-issues"' in model_page
