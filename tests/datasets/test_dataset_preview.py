"""A dataset's preview: GET /api/datasets/{id}/preview/ and the dataset page (sample rows, labels, token lengths)."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from transformers import AutoTokenizer

from jobs.datasets import preview
from jobs.datasets import services as dataset_services
from mlcore.catalogue import bundled_path
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db

# Lengths that differ: 3 to 60 words, so a max_length of 32 cuts some texts and leaves others whole.
ROWS = [(" ".join(["great"] * n) + " film", "positive" if n % 2 else "negative") for n in range(3, 61, 3)]


@pytest.fixture
def dataset(user):
    return dataset_services.create_dataset(user, "lengths", SimpleUploadedFile("lengths.csv", csv_bytes(ROWS)))


def _lengths() -> list[int]:
    tokenizer = AutoTokenizer.from_pretrained(bundled_path())
    return [len(ids) for ids in tokenizer([text for text, _ in ROWS])["input_ids"]]


def test_the_preview_counts_tokens_with_the_bundled_tokenizer(api, dataset):
    response = api.get(f"/api/datasets/{dataset.pk}/preview/", {"max_length": 32})
    assert response.status_code == 200, response.content
    body = response.json()
    lengths = _lengths()
    tokens = body["tokens"]
    assert tokens["max"] == max(lengths) == 63  # [CLS], 60 x "great", "film", [SEP]
    assert tokens["truncated_fraction"] == pytest.approx(sum(n > 32 for n in lengths) / len(lengths))
    assert 0 < tokens["truncated_fraction"] < 1
    assert sum(b["count"] for b in tokens["histogram"]) == len(ROWS) == tokens["sampled"]
    assert body["model"] == "all-MiniLM-L6-v2" and body["max_length"] == 32


def test_the_preview_shows_the_first_rows_and_the_label_distribution(api, dataset):
    body = api.get(f"/api/datasets/{dataset.pk}/preview/", {"rows": 3}).json()
    assert [(r["text"], r["label"]) for r in body["rows"]] == ROWS[:3]
    assert body["label_counts"] == {"negative": 10, "positive": 10}
    assert body["num_rows"] == 20


def test_a_long_text_is_cut_in_the_sample_and_says_how_long_it_is(api, user):
    text = "word " * 500
    upload = SimpleUploadedFile("long.csv", csv_bytes([(text, "a"), ("short", "b")]))
    dataset = dataset_services.create_dataset(user, "long", upload)
    row = api.get(f"/api/datasets/{dataset.pk}/preview/").json()["rows"][0]
    assert len(row["text"]) == preview.PREVIEW_TEXT_CHARS and row["text_chars"] == len(text)


def test_a_second_preview_comes_from_the_cache(api, dataset):
    first = api.get(f"/api/datasets/{dataset.pk}/preview/", {"max_length": 24}).json()
    default_storage.delete(dataset.file.name)  # a preview made again would have to read it
    again = api.get(f"/api/datasets/{dataset.pk}/preview/", {"max_length": 24, "rows": 2})
    assert again.status_code == 200 and again.json()["tokens"] == first["tokens"]
    assert again.json()["rows"] == first["rows"][:2]
    # Another max_length is another count, which needs the file; the server's path is not in the answer.
    other = api.get(f"/api/datasets/{dataset.pk}/preview/", {"max_length": 25})
    assert other.status_code == 503
    assert other.json() == {"detail": "the preview could not be made (the server logged why); try again"}


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"max_length": "abc"}, "max_length", "must be an integer"),
        ({"max_length": 4}, "max_length", "max_length must be in [8, 512], got 4"),
        ({"rows": 51}, "rows", "between 0 and 50"),
        ({"model": "/etc"}, "model", "not in the catalogue"),
    ],
)
def test_bad_preview_parameters_get_a_clear_400(api, dataset, query, field, message):
    response = api.get(f"/api/datasets/{dataset.pk}/preview/", query)
    assert response.status_code == 400
    assert message in response.json()[field][0]


def test_a_hub_tokenizer_offline_is_refused_before_any_download(api, dataset, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    response = api.get(f"/api/datasets/{dataset.pk}/preview/", {"model": "bert-base-uncased"})
    assert response.status_code == 400
    assert "not available on this server" in response.json()["model"][0]


def test_another_users_dataset_has_no_preview(other_api, dataset):
    assert other_api.get(f"/api/datasets/{dataset.pk}/preview/").status_code == 404


# ---------------------------------------------------------------- the page


def _part_when_made(client, pk: int, query: dict, timeout: float = 60) -> str:
    """The dataset page's preview part, fetched as the page's script does until it is made (202 until then)."""
    deadline = time.monotonic() + timeout
    while (response := client.get(f"/datasets/{pk}/preview/", query)).status_code == 202:
        assert time.monotonic() < deadline, "the preview was not made in time"
    assert response.status_code == 200
    return response.content.decode()


def test_the_dataset_page_shows_the_preview(client, user, dataset):
    client.force_login(user)
    page = client.get(f"/datasets/{dataset.pk}/", {"max_length": 32})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="label-distribution"' in html and '<td class="num">10</td>' in html  # from the record, at once
    assert 'name="max_length" min="8" max="512" value="32"' in html  # a job's own bounds (mlcore.config)
    html = _part_when_made(client, dataset.pk, {"max_length": 32})
    share = round(100 * sum(n > 32 for n in _lengths()) / len(ROWS))
    assert f"<strong>{share}%</strong> of the texts are longer than\n      32 tokens" in html
    columns = _histogram(html)
    assert sum(c["count"] for c in columns) == len(ROWS)
    cut = [c for c in columns if "cut" in c["class"]]
    assert cut and cut[0]["start"] == 32 and "cut-start" in cut[0]["class"]  # the cut is drawn at max_length
    assert sum(c["count"] for c in cut) == sum(n > 32 for n in _lengths())
    assert all(c["end"] <= 32 for c in columns if "cut" not in c["class"])
    assert "max_length 32" in html and ">texts</div>" in html and "length in tokens" in html
    assert ROWS[0][0] in html and 'id="label-distribution"' in html
    assert "data-pending" not in html


def _histogram(html: str) -> list[dict]:
    """The histogram's columns as the page draws them: class, start, end and count of each."""
    from html.parser import HTMLParser

    columns = []

    class Columns(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if "histogram-col" in (a.get("class") or "").split():
                columns.append({"class": a["class"].split(), "start": int(a["data-start"]),
                                "end": int(a["data-end"]), "count": int(a["data-count"])})  # fmt: skip

    Columns().feed(html)
    return columns


def test_the_page_answers_at_once_while_the_preview_is_made_and_shows_it_when_made(client, user, dataset):
    client.force_login(user)
    key = preview._key(dataset, "all-MiniLM-L6-v2", 40)
    cache.add(f"{key}:pending", 1, 60)  # as when another web process is making it
    started = time.monotonic()
    page = client.get(f"/datasets/{dataset.pk}/", {"max_length": 40})
    assert page.status_code == 200 and time.monotonic() - started < 5
    html = page.content.decode()
    assert "data-pending" in html and f'data-url="/datasets/{dataset.pk}/preview/?max_length=40"' in html
    assert 'id="preview-pending"' in html and 'id="token-histogram"' not in html
    assert client.get(f"/datasets/{dataset.pk}/preview/", {"max_length": 40}).status_code == 202
    cache.delete(f"{key}:pending")  # that process stopped: the next ask makes it here
    html = _part_when_made(client, dataset.pk, {"max_length": 40})
    assert 'id="token-histogram"' in html and "data-pending" not in html and ROWS[0][0] in html


def test_the_dataset_page_says_what_is_wrong(client, user, dataset):
    client.force_login(user)
    response = client.get(f"/datasets/{dataset.pk}/", {"max_length": 2000})
    assert response.status_code == 400
    assert "max_length must be in [8, 512], got 2000" in response.content.decode()


def test_uploading_on_the_dashboard_leads_to_the_preview(client, user):
    client.force_login(user)
    response = client.post("/datasets/upload/", {"file": SimpleUploadedFile("r.csv", csv_bytes(ROWS))})
    assert response.status_code == 302
    assert response["Location"] == f"/datasets/{user.datasets.get().pk}/"
