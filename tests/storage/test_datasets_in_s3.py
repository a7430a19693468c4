"""An uploaded dataset is an object in the bucket, and the worker's path reads it from there."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from jobs.datasets import services
from jobs.models import Dataset
from mlcore.testing import sentiment_rows
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db


def test_an_uploaded_dataset_is_stored_in_the_bucket_and_loaded_from_it(s3, api):
    rows = sentiment_rows(40)
    content = csv_bytes(rows)
    response = api.post("/api/datasets/", {"file": _upload(content)}, format="multipart")
    assert response.status_code == 201, response.content
    dataset = Dataset.objects.get(pk=response.json()["id"])

    stored = s3.Object(dataset.file.name).get()["Body"].read()
    assert stored == content
    with pytest.raises(NotImplementedError):  # no local path: the worker reads through the storage API
        default_storage.path(dataset.file.name)

    data = services.load_dataset(dataset)
    assert data.texts == [text for text, _ in rows]
    assert [data.label_names[y] for y in data.labels] == [label for _, label in rows]


def test_deleting_a_dataset_removes_its_object(s3, api, django_capture_on_commit_callbacks):
    response = api.post("/api/datasets/", {"file": _upload(csv_bytes(sentiment_rows(20)))}, format="multipart")
    name = Dataset.objects.get(pk=response.json()["id"]).file.name
    assert [o.key for o in s3.objects.all()] == [name]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/datasets/{response.json()['id']}/").status_code == 204
    assert [o.key for o in s3.objects.all()] == []


def _upload(content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("reviews.csv", content)
