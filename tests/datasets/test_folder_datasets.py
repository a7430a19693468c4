"""Importing a server folder in the IMDB layout as a dataset: POST /api/datasets/ with server_path."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Dataset

pytestmark = pytest.mark.django_db

REVIEWS = {
    "train/pos": ["A joy from start to end.", "Loved it: the cast, the score.", "Superb <br />film."],
    "train/neg": ["Dull and long.", "The worst film this year."],
    "train/unsup": ["No label on this one."],
    "test/pos": ["Great."],
    "test/neg": ["Awful."],
}


@pytest.fixture
def roots(tmp_path: Path, settings) -> Path:
    """A dataset root holding aclImdb in miniature, with a file outside it that nobody may import."""
    root = tmp_path / "datasets"
    for folder, texts in REVIEWS.items():
        (root / "aclImdb" / folder).mkdir(parents=True)
        for i, text in enumerate(texts):
            (root / "aclImdb" / folder / f"{i}_7.txt").write_text(text, encoding="utf-8")
    (tmp_path / "secret" / "a").mkdir(parents=True)
    (tmp_path / "secret" / "b").mkdir()
    (tmp_path / "secret" / "a" / "x.txt").write_text("password")
    (tmp_path / "secret" / "b" / "y.txt").write_text("hunter2")
    settings.DISTILLERY_DATASET_ROOTS = [root.resolve()]
    return root


def test_the_server_lists_the_folders_it_imports_with_their_splits(api, roots):
    assert api.get("/api/datasets/folders/").json() == [{"path": str(roots / "aclImdb"), "splits": ["test", "train"]}]


def test_a_split_is_imported_as_a_dataset_jobs_read_like_an_upload(api, roots):
    response = api.post("/api/datasets/", {"server_path": "aclImdb", "split": "train"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["num_rows"] == 5 and body["labels"] == ["neg", "pos"]
    assert body["label_counts"] == {"neg": 2, "pos": 3}
    assert body["name"] == "aclImdb-train" and body["original_filename"] == "aclImdb/train"
    data = dataset_services.load_dataset(Dataset.objects.get(pk=body["id"]))
    assert sorted(zip(data.texts, data.labels, strict=True)) == sorted(
        (text, data.label_names.index(label)) for folder, texts in REVIEWS.items() if folder.startswith("train/")
        for label in [folder.split("/")[1]] if label != "unsup" for text in texts
    )  # fmt: skip


def test_an_absolute_path_under_a_root_is_accepted(api, roots):
    path = str(roots / "aclImdb")
    response = api.post("/api/datasets/", {"server_path": path, "split": "test", "name": "imdb test"}, format="json")
    assert response.status_code == 201 and response.json()["num_rows"] == 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"server_path": "aclImdb"}, "holds the splits test, train: choose one"),
        ({"server_path": "aclImdb", "split": "dev"}, "has no split 'dev'"),
        ({"server_path": "../secret"}, "no dataset folder '../secret' under the folders this server imports from"),
        ({"server_path": "/etc"}, "no dataset folder '/etc'"),
        ({"server_path": "nothing-here"}, "no dataset folder 'nothing-here'"),
        # A name longer than a file system takes (ENAMETOOLONG): pathlib raised, a 500.
        ({"server_path": "x" * 300}, "no dataset folder 'xxx"),
    ],
)
def test_a_bad_folder_or_one_outside_the_roots_is_refused_and_nothing_is_stored(api, roots, payload, message):
    response = api.post("/api/datasets/", payload, format="json")
    assert response.status_code == 400
    assert message in response.json()["server_path"][0]
    assert Dataset.objects.count() == 0


def test_a_symlink_out_of_the_root_is_refused(api, roots, tmp_path):
    (roots / "escape").symlink_to(tmp_path / "secret", target_is_directory=True)
    response = api.post("/api/datasets/", {"server_path": "escape"}, format="json")
    assert response.status_code == 400 and Dataset.objects.count() == 0


@pytest.mark.parametrize(
    "link, target, where",
    [
        ("aclImdb/train/pos/leak.txt", "secret/a/x.txt", "pos/leak.txt"),  # a file
        ("aclImdb/train/loot", "secret/b", "loot"),  # a label folder
        ("aclImdb/stolen", "secret", "stolen"),  # a split
    ],
)
def test_a_symlink_inside_an_allowed_folder_that_leads_out_of_it_is_refused(api, roots, tmp_path, link, target, where):
    (roots / link).symlink_to(tmp_path / target)
    split = "stolen" if where == "stolen" else "train"
    response = api.post("/api/datasets/", {"server_path": "aclImdb", "split": split}, format="json")
    assert response.status_code == 400 and Dataset.objects.count() == 0
    message = response.json()["server_path"][0]
    assert message == f"{where} leads outside the dataset folder (a symbolic link); it is not read"
    assert "password" not in str(response.json()) and "hunter2" not in str(response.json())


def test_a_server_without_roots_imports_nothing(api, settings):
    settings.DISTILLERY_DATASET_ROOTS = []
    response = api.post("/api/datasets/", {"server_path": "/tmp"}, format="json")
    assert response.status_code == 400
    assert "DISTILLERY_DATASET_ROOTS is not set" in response.json()["server_path"][0]
    assert api.get("/api/datasets/folders/").json() == []


def test_a_file_and_a_folder_together_are_refused(api, roots, sentiment_csv):
    response = api.post("/api/datasets/", {"server_path": "aclImdb", "split": "train", "file": sentiment_csv})
    assert response.status_code == 400
    assert "send one of a file, a server_path or a hub_id" in response.json()["file"][0]


def test_neither_a_file_nor_a_folder_is_refused(api):
    response = api.post("/api/datasets/", {"name": "nothing"}, format="json")
    assert response.status_code == 400 and "send one of" in response.json()["file"][0]


def test_the_dashboard_imports_a_folder_and_leads_to_its_preview(client, user, roots):
    client.force_login(user)
    html = client.get("/").content.decode()
    assert 'id="folder-form"' in html and str(roots / "aclImdb") in html
    response = client.post("/datasets/import/", {"server_path": str(roots / "aclImdb"), "split": "test"})
    assert response.status_code == 302
    assert response["Location"] == f"/datasets/{Dataset.objects.get().pk}/"
    response = client.post("/datasets/import/", {"server_path": str(roots / "aclImdb"), "split": "dev"})
    assert response.status_code == 400 and "has no split" in response.content.decode()
    assert Dataset.objects.count() == 1


def test_the_dashboard_offers_no_import_without_roots(client, user, settings):
    settings.DISTILLERY_DATASET_ROOTS = []
    client.force_login(user)
    assert 'id="folder-form"' not in client.get("/").content.decode()


def test_a_gzip_bomb_among_the_texts_is_refused_naming_the_file_and_nothing_is_stored(api, roots, settings):
    with gzip.GzipFile(roots / "aclImdb" / "train" / "pos" / "9_9.txt", "wb", mtime=0) as gz:
        for _ in range(20):
            gz.write(b"a" * 2**20)  # 20 MiB from about 20 KB
    response = api.post("/api/datasets/", {"server_path": "aclImdb", "split": "train"}, format="json")
    assert response.status_code == 400
    assert response.json()["server_path"][0].startswith("pos/9_9.txt: the file inflates to more than 100 times")
    assert Dataset.objects.count() == 0
    assert not any(p.is_file() for p in Path(settings.MEDIA_ROOT).rglob("*"))


def test_a_folder_whose_stored_jsonl_would_pass_the_upload_limit_is_refused(api, roots, settings):
    # The texts (about 110 bytes) fit; as JSONL (about 290) they would not, and workers read it under the limit.
    settings.DISTILLERY_MAX_UPLOAD_MB = 200 / 2**20
    response = api.post("/api/datasets/", {"server_path": "aclImdb", "split": "train"}, format="json")
    assert response.status_code == 400
    assert "as JSONL; the limit is" in response.json()["server_path"][0]
    assert Dataset.objects.count() == 0
