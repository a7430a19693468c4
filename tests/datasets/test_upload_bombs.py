"""Decompression bombs through the real views: a small gzip upload that inflates past the upload limit (or past
100:1) is answered 400 with the reason within two seconds, and nothing is stored, for dataset uploads (API,
dashboard, a held upload) and file classification (API, dashboard); the workers' re-reads refuse it too.

Peak memory is measured where it can be read honestly, in a fresh process: tests/mlcore/test_decompression_bombs.py.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets.held import hold_upload
from jobs.datasets.services import load_dataset
from jobs.models import Dataset, Job
from jobs.registry.services import promote
from jobs.serving.batch import load_texts
from mlcore.data import DataError
from mlcore.testing import sentiment_rows, write_gzip_bomb

pytestmark = pytest.mark.django_db

RATIO_REFUSAL = "the file inflates to more than 100 times its compressed size"


@pytest.fixture(scope="module")
def bomb_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One 500 MiB cell in about 510 KB of gzip, the upload of issue 16."""
    return write_gzip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.csv.gz", 500).read_bytes()


def _bomb(bomb_bytes: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("reviews.csv.gz", bomb_bytes, content_type="application/gzip")


def _stored_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def _timed(post):
    start = time.perf_counter()
    response = post()
    return response, time.perf_counter() - start


def test_a_bomb_posted_to_the_api_is_refused_within_2_seconds_and_nothing_is_stored(api, settings, bomb_bytes):
    response, seconds = _timed(lambda: api.post("/api/datasets/", {"file": _bomb(bomb_bytes)}, format="multipart"))
    assert response.status_code == 400
    assert response.json()["file"][0].startswith(RATIO_REFUSAL)
    assert seconds < 2
    assert Dataset.objects.count() == 0
    assert _stored_files(settings) == []


def test_the_upload_limit_is_counted_on_the_inflated_bytes(api, settings):
    out = io.StringIO()
    csv.writer(out).writerows([("text", "label"), *sentiment_rows(40_000)])
    body = gzip.compress(out.getvalue().encode(), mtime=0)
    assert len(body) < 2**20 < len(out.getvalue())  # under 1 MB sent, over 1 MB inflated, well under 100:1
    settings.DISTILLERY_MAX_UPLOAD_MB = 1
    response = api.post("/api/datasets/", {"file": SimpleUploadedFile("r.csv.gz", body)}, format="multipart")
    assert response.status_code == 400
    assert response.json()["file"] == ["the file inflates to more than 1 MB; the limit is 1 MB"]
    settings.DISTILLERY_MAX_UPLOAD_MB = 2
    response = api.post("/api/datasets/", {"file": SimpleUploadedFile("r.csv.gz", body)}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["num_rows"] == 40_000


def test_a_bomb_uploaded_on_the_dashboard_gets_the_400_page_with_the_reason(logged_in, settings, bomb_bytes):
    response, seconds = _timed(
        lambda: logged_in.post("/datasets/upload/", {"name": "bomb", "file": _bomb(bomb_bytes)})
    )  # fmt: skip
    assert response.status_code == 400
    assert RATIO_REFUSAL in response.content.decode()
    assert seconds < 2
    assert Dataset.objects.count() == 0
    assert _stored_files(settings) == []


def test_a_held_bomb_is_refused_when_its_columns_are_chosen(logged_in, user, settings, bomb_bytes):
    token = hold_upload(user, _bomb(bomb_bytes), ["text", "label"])
    choice = {"name": "bomb", "held": token, "text_column": "text", "label_column": "label"}
    response, seconds = _timed(lambda: logged_in.post("/datasets/upload/", choice))
    assert response.status_code == 400
    assert RATIO_REFUSAL in response.content.decode()
    assert seconds < 2
    assert Dataset.objects.count() == 0
    assert [p.parts[-3] for p in _stored_files(settings)] == ["held"]  # only the held copy, kept for another try


def test_a_bomb_sent_for_file_classification_is_refused_and_no_job_is_made(
    api, logged_in, trained_model, settings, bomb_bytes
):
    promote(trained_model)
    stored_before = _stored_files(settings)
    response, seconds = _timed(
        lambda: api.post("/api/classify/file/", {"file": _bomb(bomb_bytes)}, format="multipart")
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["file"][0].startswith(RATIO_REFUSAL)
    assert seconds < 2
    page, seconds = _timed(lambda: logged_in.post("/classify/file/", {"file": _bomb(bomb_bytes)}))
    assert page.status_code == 400
    assert RATIO_REFUSAL in page.content.decode()
    assert seconds < 2
    assert not Job.objects.filter(kind=Job.Kind.CLASSIFY).exists()
    assert _stored_files(settings) == stored_before


def test_a_stored_bomb_is_refused_when_a_worker_reads_it_back(user, bomb_bytes):
    """Files in storage came through the checks above, but the workers read them under the same caps."""
    name = default_storage.save("classify/input/bomb/reviews.csv.gz", ContentFile(bomb_bytes))
    job = Job.objects.create(
        owner=user, kind=Job.Kind.CLASSIFY, input_file=name, input_filename="reviews.csv.gz",
        params={"format": "csv", "text_column": "text"},
    )  # fmt: skip
    with pytest.raises(DataError, match=RATIO_REFUSAL):
        load_texts(job)
    dataset = Dataset.objects.create(
        owner=user, name="bomb", file=name, original_filename="reviews.csv.gz", format="csv", text_column="text",
        label_column="label", num_rows=1, labels=["neg", "pos"], label_counts={}, size_bytes=len(bomb_bytes),
    )  # fmt: skip
    with pytest.raises(DataError, match=RATIO_REFUSAL):
        load_dataset(dataset)
