"""Dataset uploads through the API and the dashboard: good files are stored, bad ones are refused whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Dataset
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db

ROWS = [("good movie", "pos"), ("bad movie", "neg"), ("great film", "pos"), ("awful film", "neg")]


def _upload(api, filename: str, content: bytes, **extra):
    return api.post("/api/datasets/", {"file": SimpleUploadedFile(filename, content), **extra}, format="multipart")


def _stored_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_a_csv_upload_is_stored_with_rows_and_labels(api, settings):
    response = _upload(api, "reviews.csv", csv_bytes(ROWS), name="my reviews")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["num_rows"], body["labels"]) == ("my reviews", 4, ["neg", "pos"])
    assert body["label_counts"] == {"neg": 2, "pos": 2}
    assert body["text_column"] == "text" and body["format"] == "csv"
    assert len(_stored_files(settings)) == 1


def test_tsv_and_jsonl_uploads_detect_their_columns(api):
    tsv = csv_bytes(ROWS, header=("Review", "Sentiment"), delimiter="\t")
    body = _upload(api, "reviews.tsv", tsv).json()
    assert (body["text_column"], body["label_column"], body["num_rows"]) == ("Review", "Sentiment", 4)
    jsonl = "\n".join(json.dumps({"sentence": t, "target": i % 2}) for i, (t, _) in enumerate(ROWS)).encode()
    body = _upload(api, "reviews.jsonl", jsonl).json()
    assert (body["format"], body["labels"]) == ("jsonl", ["0", "1"])


def test_chosen_columns_are_used(api):
    content = csv_bytes([(text, label, "x") for text, label in ROWS], header=("body", "y", "other"))
    body = _upload(api, "reviews.csv", content, text_column="body", label_column="y").json()
    assert (body["text_column"], body["label_column"]) == ("body", "y")


@pytest.mark.parametrize(
    "filename, content, extra, message",
    [
        ("r.csv", "text,label\ncafé,pos\nbad,neg\n".encode("latin-1"), {}, "not UTF-8"),
        ("r.csv", csv_bytes(ROWS, header=("words", "label")), {}, "text column"),
        ("r.csv", csv_bytes(ROWS), {"label_column": "stars"}, "no column named 'stars'"),
        ("r.csv", csv_bytes([("good", "pos"), ("", "neg"), ("bad", "neg")]), {}, "row 2"),
        ("r.csv", csv_bytes([("good", "pos"), ("fine", "pos")]), {}, "at least 2"),
        ("r.jsonl", b'{"text": "good", "label": "pos"}\n{"text": oops}\n', {}, "line 2"),
        ("r.xlsx", b"PK\x03\x04", {}, "unsupported file type"),
        ("r.csv", b"", {}, "empty"),
    ],
    ids=["encoding", "no-text-column", "missing-chosen-column", "empty-text", "one-label", "bad-json",
         "wrong-type", "empty-file"],
)
def test_a_bad_file_gets_a_clear_400_and_nothing_is_stored(api, settings, filename, content, extra, message):
    response = _upload(api, filename, content, **extra)
    assert response.status_code == 400
    assert message in json.dumps(response.json())
    assert Dataset.objects.count() == 0
    assert _stored_files(settings) == []


def test_a_file_over_the_size_limit_is_refused(api, settings):
    settings.DISTILLERY_MAX_UPLOAD_MB = 0.0001  # about 100 bytes
    response = _upload(api, "reviews.csv", csv_bytes(ROWS * 10))
    assert response.status_code == 400
    assert "the limit is" in response.json()["file"][0]
    assert Dataset.objects.count() == 0


def test_the_dashboard_form_uploads_and_shows_errors(client, user, settings):
    client.force_login(user)
    response = client.post("/datasets/upload/", {"file": SimpleUploadedFile("r.csv", csv_bytes(ROWS))})
    assert response.status_code == 302
    assert Dataset.objects.get().num_rows == 4
    response = client.post("/datasets/upload/", {"file": SimpleUploadedFile("r.csv", csv_bytes(ROWS[:1]))})
    assert response.status_code == 400
    assert "at least 2" in response.content.decode()
    assert Dataset.objects.count() == 1
