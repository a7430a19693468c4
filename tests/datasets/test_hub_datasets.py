"""Importing a Hugging Face Hub dataset: POST /api/datasets/ with hub_id. This machine has no internet, so the
one stand-in is the hub itself: its id is redirected to a local Parquet folder read by the real load_dataset."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """"stanfordnlp/imdb" as a local copy: a train split of 4 reviews with a ClassLabel label, as on the hub; the
    hub's address (HF_ENDPOINT) a local port that takes connections, so the import finds the hub reachable."""
    import datasets

    endpoint = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{endpoint.getsockname()[1]}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    rows = {"text": ["A joy.", "Dull.", "Loved it.", "Weak plot."], "label": [1, 0, 1, 0]}
    folder = tmp_path / "hub" / "stanfordnlp--imdb"
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / "data" / "train-00000.parquet"))
    real = datasets.load_dataset
    calls: dict[str, str] = {}

    def from_local_copy(path, name=None, split=None, cache_dir=None, **kwargs):
        calls.update(path=path, split=split)
        if path != "stanfordnlp/imdb":
            raise FileNotFoundError(f"Dataset '{path}' doesn't exist on the Hub or cannot be accessed.")
        return real(str(folder), name=name, split=split, cache_dir=str(tmp_path / "cache"), **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", from_local_copy)
    yield calls
    endpoint.close()


def test_a_hub_split_is_imported_with_its_label_names(api, hub):
    response = api.post("/api/datasets/", {"hub_id": "stanfordnlp/imdb", "split": "train"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["labels"] == ["neg", "pos"] and body["label_counts"] == {"neg": 2, "pos": 2}
    assert body["original_filename"] == "stanfordnlp/imdb/train" and body["name"] == "stanfordnlp-imdb-train"
    assert hub == {"path": "stanfordnlp/imdb", "split": "train"}
    data = dataset_services.load_dataset(Dataset.objects.get(pk=body["id"]))
    assert [(t, data.label_names[y]) for t, y in zip(data.texts, data.labels, strict=True)][:2] == [
        ("A joy.", "pos"), ("Dull.", "neg"),
    ]  # fmt: skip


def test_an_unknown_id_or_split_is_a_400_and_nothing_is_stored(api, hub):
    for payload, message in (
        ({"hub_id": "nobody/nothing"}, "could not load the dataset 'nobody/nothing' (split 'train'): Dataset"),
        ({"hub_id": "stanfordnlp/imdb", "split": "unsupervised"}, "(split 'unsupervised')"),
    ):
        response = api.post("/api/datasets/", payload, format="json")
        assert response.status_code == 400
        assert message in response.json()["hub_id"][0]
    assert Dataset.objects.count() == 0


@pytest.mark.parametrize("hub_id", ["/etc", "../secret", "./data", "a/b/c", "-x"])
def test_a_server_path_is_not_a_hub_id(api, hub, hub_id):
    response = api.post("/api/datasets/", {"hub_id": hub_id}, format="json")
    assert response.status_code == 400
    assert "is not a hub dataset id" in response.json()["hub_id"][0]
    assert hub == {}  # refused before the loader was asked


def test_an_existing_local_folder_is_not_a_hub_id(api, hub, tmp_path, monkeypatch):
    (tmp_path / "local").mkdir()
    monkeypatch.chdir(tmp_path)
    response = api.post("/api/datasets/", {"hub_id": "local"}, format="json")
    assert response.status_code == 400 and hub == {}


def test_the_dashboard_imports_from_the_hub_when_online(client, user, hub, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    client.force_login(user)
    assert 'id="hub-form"' in client.get("/").content.decode()
    response = client.post("/datasets/hub/", {"hub_id": "stanfordnlp/imdb", "split": "train"})
    assert response.status_code == 302 and response["Location"] == f"/datasets/{Dataset.objects.get().pk}/"
    response = client.post("/datasets/hub/", {"hub_id": "/etc", "split": "train"})
    assert response.status_code == 400 and "is not a hub dataset id" in response.content.decode()


def test_the_dashboard_offers_no_hub_import_offline(client, user, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    client.force_login(user)
    assert 'id="hub-form"' not in client.get("/").content.decode()
