"""When an upload's text or label column cannot be told, the API answers with the file's columns, and the
dashboard holds the file and offers those columns as choices, so that choosing needs no second upload."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import held as held_uploads
from jobs.models import Dataset
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db

ROWS = [("a good film", "5"), ("a bad film", "1"), ("great fun", "5"), ("dull", "1")]


def _file() -> SimpleUploadedFile:
    return SimpleUploadedFile("reviews.csv", csv_bytes(ROWS, header=("review_body", "stars")))


def _held(settings) -> list[str]:
    try:
        folders, _ = default_storage.listdir("held")
    except FileNotFoundError:
        return []
    return [f"held/{f}/{n}" for f in folders for n in default_storage.listdir(f"held/{f}")[1]]


def test_the_api_answers_with_the_files_columns_and_stores_nothing(api):
    response = api.post("/api/datasets/", {"file": _file()}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["columns"] == ["review_body", "stars"]
    assert body["text_column"][0].startswith("could not find the text column")
    assert Dataset.objects.count() == 0


def test_the_dashboard_holds_the_file_and_offers_its_columns(logged_in, settings):
    first = logged_in.post("/datasets/upload/", {"file": _file(), "name": "stars"})

    assert first.status_code == 400
    html = first.content.decode()
    assert 'id="columns-offered"' in html
    select = re.search(r'<select name="text_column".*?</select>', html, re.S).group()
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "review_body", "stars"]
    token = re.search(r'<input type="hidden" name="held" value="([^"]+)"', html).group(1)
    assert len(_held(settings)) == 1 and Dataset.objects.count() == 0

    second = logged_in.post(
        "/datasets/upload/", {"held": token, "name": "stars", "text_column": "review_body", "label_column": "stars"}
    )

    dataset = Dataset.objects.get()
    assert second.status_code == 302 and second["Location"] == f"/datasets/{dataset.pk}/"
    assert (dataset.name, dataset.num_rows, dataset.labels) == ("stars", 4, ["1", "5"])
    assert (dataset.text_column, dataset.label_column) == ("review_body", "stars")
    assert _held(settings) == []  # the held copy went once the dataset was made


def test_a_refused_choice_keeps_the_file_held_for_another(logged_in, settings):
    html = logged_in.post("/datasets/upload/", {"file": _file()}).content.decode()
    token = re.search(r'name="held" value="([^"]+)"', html).group(1)
    # No text column chosen, and "stars" is no text-column name: refused again, the file still held.
    again = logged_in.post("/datasets/upload/", {"held": token, "text_column": "", "label_column": "stars"})
    assert again.status_code == 400 and 'id="columns-offered"' in again.content.decode()
    assert len(_held(settings)) == 1 and Dataset.objects.count() == 0


def test_another_users_or_a_forged_token_holds_nothing_for_them(client, other_user, logged_in):
    html = logged_in.post("/datasets/upload/", {"file": _file()}).content.decode()
    token = re.search(r'name="held" value="([^"]+)"', html).group(1)
    client.force_login(other_user)
    for held in (token, token[:-3] + "abc"):
        choice = {"held": held, "text_column": "review_body", "label_column": "stars"}
        response = client.post("/datasets/upload/", choice)
        assert response.status_code == 400 and "choose a file" in response.content.decode()
    assert Dataset.objects.count() == 0


def test_uploads_held_longer_than_a_day_are_removed(user, settings):
    from django.conf import settings as django_settings

    from jobs import tasks

    default_storage.save("held/1000-old/x.csv", ContentFile(b"text,label\n"))
    held_uploads.hold_upload(user, _file(), ["review_body", "stars"])  # holding one drops the stale ones
    held = _held(settings)
    assert len(held) == 1 and "old" not in held[0]
    default_storage.save("held/1000-older/y.csv", ContentFile(b"text,label\n"))
    assert tasks.drop_stale_held_uploads.apply().get() == 1 and _held(settings) == held  # and so does beat, hourly
    schedule = django_settings.CELERY_BEAT_SCHEDULE["drop-stale-held-uploads"]
    assert schedule["task"] == tasks.drop_stale_held_uploads.name and schedule["schedule"] == 3600.0
