"""Every CSV the API serves quotes a user's cell that a spreadsheet would run as a formula (=, +, -, @, tab,
carriage return first): the model comparison, a job's metric points and a file classification's output, read
back with the csv module; numbers the app computed stay numbers."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import services as dataset_services
from jobs.models import Job, MetricPoint, ModelRecord
from tests.conftest import watch_job

DANGEROUS = ["=", "+", "-", "@", "\t", "\r"]
EVIL_NAME = '=HYPERLINK("http://evil")'


def _table(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode(), newline="")))


@pytest.fixture
def staff_api(api, user):
    """The staff member who downloads everyone's CSVs: the one an injected formula is aimed at."""
    user.is_staff = True
    user.save()
    return api


@pytest.mark.django_db
def test_the_compare_csv_quotes_model_dataset_and_base_model_names(staff_api, other_user, sentiment_csv):
    dataset = dataset_services.create_dataset(other_user, "+cmd", sentiment_csv)
    evil = ModelRecord.objects.create(
        owner=other_user, name=EVIL_NAME, kind="finetune", base_model="@SUM(1+1)*cmd|' /C calc'!A0", dataset=dataset,
        params={}, label_names=["a", "b"], num_parameters=10, size_bytes=40,
        metrics={"test/accuracy": 0.9, "train/avg_loss": -0.25},
    )  # fmt: skip
    tabbed = ModelRecord.objects.create(
        owner=other_user, name="\t-1", kind="finetune", base_model="-2+3", params={}, label_names=["a", "b"],
        num_parameters=10, size_bytes=20, metrics={"test/accuracy": 0.45},
    )  # fmt: skip

    response = staff_api.get("/api/models/compare/", {"ids": f"{evil.pk},{tabbed.pk}", "format": "csv"})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    first, second = _table(response.content)
    assert first["name"] == "'" + EVIL_NAME and first["dataset"] == "'+cmd"
    assert first["base_model"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert (second["name"], second["base_model"]) == ("'\t-1", "'-2+3")
    # The app's numbers are numbers: a negative loss, a ratio, the ids.
    assert first["avg_train_loss"] == "-0.25" and first["id"] == str(evil.pk)
    assert float(second["test_accuracy_vs_first"]) == pytest.approx(0.5)
    assert float(second["size_vs_first"]) == pytest.approx(0.5)


@pytest.mark.django_db
def test_the_metrics_csv_quotes_text_cells_and_keeps_negative_numbers(staff_api, other_user, sentiment_csv):
    dataset = dataset_services.create_dataset(other_user, "reviews", sentiment_csv)
    job = Job.objects.create(owner=other_user, kind="finetune", dataset=dataset, params={}, status="succeeded")
    # mlcore names every metric today; a name or a text value from a user's label must still not run.
    points = [
        MetricPoint(job=job, seq=1, step=1, kind="train", values={"train/loss": -0.5, "lr": 2e-5}),
        MetricPoint(job=job, seq=2, step=1, kind="val", values={"=evil": "@SUM(1)", "val/accuracy": 0.75}),
    ]
    MetricPoint.objects.bulk_create(points)

    response = staff_api.get(f"/api/jobs/{job.pk}/metrics/?format=csv")

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert rows[0] == ["seq", "step", "kind", "created_at", "train/loss", "lr", "val/accuracy", "'=evil"]
    assert [r[:3] + r[4:] for r in rows[1:]] == [
        ["1", "1", "train", "-0.5", "2e-05", "", ""],
        ["2", "1", "val", "", "", "0.75", "'@SUM(1)"],
    ]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_classified_csv_from_the_worker_quotes_ids_and_texts(api, trained_model, celery_worker):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    records = [{"id": f"{c}{i}", "text": f"{c}cmd|' /C calc'!A0 good film"} for i, c in enumerate(DANGEROUS)]
    records += [{"id": "-1", "text": "-1"}, {"id": 7, "text": "a plain good film"}]
    upload = SimpleUploadedFile("texts.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode())
    job = api.post("/api/classify/file/", {"file": upload}, format="multipart").json()

    final = asyncio.run(watch_job(job["id"], api.token, timeout=120))[-1]
    assert final["status"] == "succeeded", final["error"]

    download = api.get(f"/api/jobs/{job['id']}/output/")
    table = _table(b"".join(download.streaming_content))
    assert [r["id"] for r in table] == ["'" + str(r["id"]) for r in records[:-1]] + ["7"]
    assert [r["text"] for r in table] == ["'" + r["text"] for r in records[:-1]] + ["a plain good film"]
    assert [r["row"] for r in table] == [str(i) for i in range(1, len(records) + 1)]
    for r in table:
        assert r["label"] in ("negative", "positive")
        assert float(r["p_negative"]) + float(r["p_positive"]) == pytest.approx(1.0, abs=1e-5)
