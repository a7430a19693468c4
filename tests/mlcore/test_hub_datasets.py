"""Datasets through HF datasets' load_dataset: checked on local folders (this machine has no hub), as hub ids
take the same path; an id that cannot be reached says why."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from mlcore import catalogue
from mlcore.data import DataError
from mlcore.hubdata import read_hub_dataset


@pytest.fixture
def csv_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "train.csv").write_text("review,sentiment\nA joy.,pos\nDull.,neg\nLoved it.,pos\n", encoding="utf-8")
    (folder / "test.csv").write_text("review,sentiment\nGreat.,pos\nAwful.,neg\n", encoding="utf-8")
    return folder


@pytest.fixture
def class_label_folder(tmp_path: Path) -> Path:
    """A Parquet dataset whose label column is a ClassLabel (0/1 stored, names in the schema), as on the hub."""
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    data = datasets.Dataset.from_dict({"text": ["Superb.", "Bad.", "Weak."], "label": [1, 0, 0]}, features=features)
    folder = tmp_path / "imdb-like" / "data"
    folder.mkdir(parents=True)
    data.to_parquet(str(folder / "train-00000.parquet"))
    return folder.parent


def test_a_split_is_read_with_the_columns_detected(csv_folder: Path, tmp_path: Path) -> None:
    data, info = read_hub_dataset(str(csv_folder), "train", cache_dir=tmp_path / "cache")
    assert (info.format, info.text_column, info.label_column) == ("hub", "review", "sentiment")
    assert data.label_names == ["neg", "pos"] and data.texts == ["A joy.", "Dull.", "Loved it."]
    test, _ = read_hub_dataset(str(csv_folder), "test", cache_dir=tmp_path / "cache")
    assert test.label_counts() == {"neg": 1, "pos": 1}


def test_class_labels_become_their_names(class_label_folder: Path, tmp_path: Path) -> None:
    data, _ = read_hub_dataset(str(class_label_folder), "train", cache_dir=tmp_path / "cache")
    assert [data.label_names[y] for y in data.labels] == ["pos", "neg", "neg"]


def test_an_unknown_split_or_column_is_a_clear_error(csv_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"could not load the dataset .* \(split 'validation'\)"):
        read_hub_dataset(str(csv_folder), "validation", cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match="no column named 'body'; the columns are: review, sentiment"):
        read_hub_dataset(str(csv_folder), "train", text_column="body", cache_dir=tmp_path / "cache")


def test_too_many_rows_are_refused(csv_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="the split has 3 rows; the limit is 2"):
        read_hub_dataset(str(csv_folder), "train", max_rows=2, cache_dir=tmp_path / "cache")


def test_a_hub_id_offline_fails_at_once_and_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import datasets.config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # read at import; the env alone is too late
    with pytest.raises(DataError) as error:
        read_hub_dataset("stanfordnlp/imdb", "train", cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert message.startswith("could not load the dataset 'stanfordnlp/imdb' (split 'train'): ")
    assert message.endswith("(this server is offline: HF_HUB_OFFLINE is set)")


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A server that is not offline: the Hub is asked for, at HF_ENDPOINT; no proxy in between."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_hub_id_without_a_network_fails_at_once_and_says_so(online, tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once it is closed
    online.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(DataError) as error:
        read_hub_dataset("stanfordnlp/imdb", "train", cache_dir=tmp_path / "cache")
    assert time.monotonic() - started < 2
    assert str(error.value) == (
        f"could not load the dataset 'stanfordnlp/imdb': the Hugging Face Hub cannot be reached from this server "
        f"(127.0.0.1:{port}: Connection refused); upload the file instead, or import a server folder"
    )


def test_a_hub_that_does_not_answer_is_given_up_on_after_the_connect_timeout(online, silent_port) -> None:
    online.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent_port}")
    started = time.monotonic()
    assert catalogue.hub_unreachable(timeout=0.5) == f"127.0.0.1:{silent_port}: no answer within 0.5 s"
    assert 0.5 <= time.monotonic() - started < 1.5


def test_the_hub_is_reached_through_the_proxy_the_environment_names(online) -> None:
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(1)
        online.setenv("HF_ENDPOINT", "https://hub.invalid")  # no such name: only the proxy can reach it
        online.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        assert catalogue.hub_unreachable(timeout=1) is None
        online.setenv("NO_PROXY", "hub.invalid")
        assert catalogue.hub_unreachable(timeout=1).startswith("hub.invalid:443: ")
