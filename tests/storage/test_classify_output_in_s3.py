"""A file classification reads its upload from the bucket and writes its CSV there, which the API hands out by a
redirect to a presigned URL."""

from __future__ import annotations

import csv
import io
import urllib.request
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job
from jobs.serving import batch

pytestmark = pytest.mark.django_db

TEXTS = ["great good film", "awful bad movie, boring", "good fun"]


def test_a_classify_jobs_input_and_output_are_objects_in_the_bucket(s3, api, trained_model):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    rows = "id,review\n" + "".join(f'r{i},"{t}"\n' for i, t in enumerate(TEXTS))
    response = api.post(
        "/api/classify/file/", {"file": SimpleUploadedFile("reviews.csv", rows.encode())}, format="multipart"
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert s3.Object(job.input_file.name).get()["Body"].read() == rows.encode()

    # What the worker's task does once it has claimed the job (tasks run in another process elsewhere).
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, attempts=1)
    job.refresh_from_db()
    batch.classify_file(job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error

    stored = s3.Object(job.output_file.name).get()["Body"].read()
    table = list(csv.DictReader(io.StringIO(stored.decode())))
    assert [r["id"] for r in table] == ["r0", "r1", "r2"] and [r["text"] for r in table] == TEXTS
    online = api.post("/api/classify/", {"texts": TEXTS}, format="json").json()
    assert [r["label"] for r in table] == [p["label"] for p in online]

    download = api.get(f"/api/jobs/{job.pk}/output/")  # the bucket sends it: a redirect to a presigned URL
    assert download.status_code == 302 and "X-Amz-Signature=" in download["Location"]
    with urllib.request.urlopen(download["Location"]) as fetched:  # no credentials: the signature is the grant
        assert fetched.read() == stored
        assert f'filename="{Path(job.output_file.name).name}"' in fetched.headers["Content-Disposition"]
