"""Batch file classification: a file of texts becomes a job on the CPU queue whose CSV holds each row's label
and probabilities, the same as /api/classify gives; bad files get a 400 and nothing is stored."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job
from tests.conftest import watch_job

TEXTS = ["great good film", "awful bad movie", "a good, great story", "bad, awful, boring", "good"]


def _upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def _stored_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file() and "classify" in p.parts]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_file_is_classified_by_the_worker_into_a_csv(api, trained_model, celery_worker):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    rows = "id,review\n" + "".join(f'r{i},"{t}"\n' for i, t in enumerate(TEXTS))
    response = api.post("/api/classify/file/", {"file": _upload("reviews.csv", rows.encode())}, format="multipart")
    assert response.status_code == 202, response.content
    job = response.json()
    assert (job["kind"], job["model"], job["input_filename"], job["output"]) == (
        "classify", trained_model.pk, "reviews.csv", None
    )
    assert api.get(f"/api/jobs/{job['id']}/output/").status_code == 404  # not written yet

    final = asyncio.run(watch_job(job["id"], api.token, timeout=120))[-1]
    assert final["status"] == "succeeded", final["error"]
    assert final["output"] is True and final["progress"] == 1.0
    download = api.get(f"/api/jobs/{job['id']}/output/")
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"
    table = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    online = api.post("/api/classify/", {"texts": TEXTS}, format="json").json()
    assert [r["row"] for r in table] == ["1", "2", "3", "4", "5"]
    assert [r["id"] for r in table] == [f"r{i}" for i in range(5)]
    assert [r["text"] for r in table] == TEXTS
    assert [r["label"] for r in table] == [p["label"] for p in online]
    for r, p in zip(table, online, strict=True):
        assert float(r["p_positive"]) == pytest.approx(p["probabilities"]["positive"], abs=1e-5)
        assert float(r["probability"]) == pytest.approx(p["probability"], abs=1e-5)
    assert api.get(f"/api/jobs/{job['id']}/").json()["output"].endswith(f"/api/jobs/{job['id']}/output/")
    # The job keeps the result at a glance for its page: rows per label, and the first rows.
    summary = Job.objects.get(pk=job["id"]).output_summary
    labels = [r["label"] for r in table]
    assert summary["label_counts"] == {name: labels.count(name) for name in ("negative", "positive")}
    assert [(r["row"], r["id"], r["label"]) for r in summary["first_rows"]] == [
        (int(r["row"]), r["id"], r["label"]) for r in table
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, content, extra, message",
    [
        ("texts.csv", b"", {}, "empty"),
        ("texts.xlsx", b"text\nhello\n", {}, "unsupported file type"),
        ("texts.csv", b"words\nhello\n", {}, "could not find the text column"),
        ("texts.csv", b"text\nhello\n", {"text_column": "review"}, "no column named 'review'"),
        ("texts.csv", b"text\n\n  \n", {}, "the file has no data rows"),
        ("texts.jsonl", b'{"text": "ok"}\n{"text": ""}\n', {}, "row 2: the text is empty"),
        ("texts.jsonl", b'{"text": "ok"}\nnot json\n', {}, "line 2"),
    ],
)
def test_a_bad_file_gets_a_400_and_nothing_is_stored(api, trained_model, settings, name, content, extra, message):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    response = api.post("/api/classify/file/", {"file": _upload(name, content), **extra}, format="multipart")
    assert response.status_code == 400, response.content
    assert message.lower() in str(response.json()).lower()
    assert Job.objects.filter(kind="classify").count() == 0
    assert _stored_files(settings) == []


@pytest.mark.django_db
def test_a_file_needs_a_model_of_ones_own(api, other_api, trained_model):
    response = api.post("/api/classify/file/", {"file": _upload("t.csv", b"text\nhi\n")}, format="multipart")
    assert response.status_code == 400 and "no promoted model" in str(response.json())
    response = other_api.post(
        "/api/classify/file/", {"file": _upload("t.csv", b"text\nhi\n"), "model": trained_model.pk}, format="multipart"
    )
    assert response.status_code == 400 and "does not exist" in str(response.json())


@pytest.mark.django_db
def test_another_users_output_is_not_found(api, other_api, trained_model):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    job = api.post("/api/classify/file/", {"file": _upload("t.csv", b"text\nhi\n")}, format="multipart").json()
    assert other_api.get(f"/api/jobs/{job['id']}/output/").status_code == 404
    assert api.get(f"/api/jobs/{job['id']}/output/").json()["detail"] == "no output: the job is queued"


@pytest.mark.django_db
def test_the_classify_page_starts_a_file_job_or_shows_the_error(client, user, trained_model):
    client.force_login(user)
    client.post(f"/models/{trained_model.pk}/promote/")
    bad = client.post("/classify/file/", {"file": _upload("t.csv", b"words\nhi\n")})
    assert bad.status_code == 400 and "could not find the text column" in bad.content.decode()
    good = client.post("/classify/file/", {"file": _upload("t.csv", b"text\nhi\n")})
    job = Job.objects.get(kind="classify")
    assert good.status_code == 302 and good["Location"] == f"/jobs/{job.pk}/"
    page = client.get(good["Location"]).content.decode()
    assert "t.csv" in page and "Download CSV" in page
    assert "chart-loss" not in page  # no training curves for a file classification
