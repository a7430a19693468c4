"""A held upload (its columns to be chosen) shows as the file it is, a semicolon- or tab-separated .csv is read as
its columns, and the same column for both text and label is refused, on the dashboard and in the API."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets.services import load_dataset
from jobs.models import Dataset
from tests.conftest import csv_bytes
from tests.markup import element

pytestmark = pytest.mark.django_db

ROWS = [("a good film, truly", "5"), ("a bad film", "1"), ("great fun", "5"), ("dull; long", "1")]


def _upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


def _token(html: str) -> str:
    return re.search(r'<input type="hidden" name="held" value="([^"]+)"', html).group(1)


def _options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S).group()
    return re.findall(r'<option value="([^"]*)"', select)


def test_a_held_upload_shows_its_name_and_size_not_an_empty_file_input(logged_in):
    content = csv_bytes(ROWS, header=("review_body", "stars"))
    html = logged_in.post("/datasets/upload/", {"file": _upload("my reviews.csv", content)}).content.decode()

    assert element(html, "held-file-name").text == "my reviews.csv"  # as uploaded, not as storage renamed it
    assert element(html, "held-file-size").text == f"{len(content)} bytes"
    file_input = element(html, "upload-file")
    assert file_input.attrs["type"] == "file" and "required" not in file_input.attrs
    label = re.search(r'<label for="upload-file">([^<]*)</label>', html).group(1)
    assert label == "Another file"  # the input is for a replacement, inside "Use another file instead"
    assert html.index("Use another file instead") < html.index('id="upload-file"')


def test_a_held_upload_still_shows_after_a_refused_choice(logged_in):
    content = csv_bytes(ROWS, header=("review_body", "stars"))
    token = _token(logged_in.post("/datasets/upload/", {"file": _upload("r.csv", content)}).content.decode())
    again = logged_in.post("/datasets/upload/", {"held": token, "text_column": "", "label_column": "stars"})
    html = again.content.decode()
    assert again.status_code == 400
    assert element(html, "held-file-name").text == "r.csv"
    assert element(html, "held-file-size").text == f"{len(content)} bytes"


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_csv_separated_otherwise_is_read_as_its_columns_on_the_dashboard(logged_in, delimiter):
    content = csv_bytes(ROWS, header=("text", "label"), delimiter=delimiter)
    response = logged_in.post("/datasets/upload/", {"file": _upload("semi.csv", content), "name": "semi"})
    assert response.status_code == 302, response.content.decode()[:2000]
    dataset = Dataset.objects.get()
    assert (dataset.text_column, dataset.label_column, dataset.num_rows) == ("text", "label", 4)
    assert dataset.label_counts == {"1": 2, "5": 2}
    assert load_dataset(dataset).texts == [text for text, _ in ROWS]  # as a worker reads it for a job


def test_a_semicolon_file_with_unknown_column_names_offers_each_column(logged_in):
    content = csv_bytes(ROWS, header=("review_body", "stars"), delimiter=";")
    html = logged_in.post("/datasets/upload/", {"file": _upload("semi.csv", content)}).content.decode()
    assert _options(html, "text_column") == ["", "review_body", "stars"]
    assert _options(html, "label_column") == ["", "review_body", "stars"]


def test_the_dashboard_refuses_one_column_for_both_and_keeps_the_file(logged_in):
    content = csv_bytes(ROWS, header=("review_body", "stars"))
    token = _token(logged_in.post("/datasets/upload/", {"file": _upload("r.csv", content)}).content.decode())
    both = {"held": token, "text_column": "review_body", "label_column": "review_body"}
    response = logged_in.post("/datasets/upload/", both)

    html = response.content.decode()
    assert response.status_code == 400 and Dataset.objects.count() == 0
    field = re.search(r'<div class="field has-error[^"]*">\s*<label for="upload-label_column">.*?</div>', html, re.S)
    assert "the text and label columns must be different (both are &#x27;review_body&#x27;)" in field.group()
    assert _token(html) == token and element(html, "held-file-name").text == "r.csv"

    chosen = logged_in.post("/datasets/upload/", {**both, "label_column": "stars"})
    assert chosen.status_code == 302 and Dataset.objects.get().label_column == "stars"


def test_the_api_refuses_one_column_for_both(api):
    content = csv_bytes(ROWS, header=("review_body", "stars"))
    payload = {"file": _upload("r.csv", content), "text_column": "stars", "label_column": "stars"}
    response = api.post("/api/datasets/", payload, format="multipart")
    assert response.status_code == 400
    assert response.json()["label_column"] == [
        "the text and label columns must be different (both are 'stars'); choose another for the label"
    ]
    assert Dataset.objects.count() == 0


def test_two_spellings_of_one_column_are_refused_once_the_file_is_read(api):
    payload = {"file": _upload("r.csv", csv_bytes(ROWS)), "text_column": "text", "label_column": "TEXT"}
    response = api.post("/api/datasets/", payload, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["label_column"][0].startswith("the text and label columns must be different (both are 'text')")
    assert body["columns"] == ["text", "label"] and Dataset.objects.count() == 0
