"""Where the storage backend has no local paths (object storage), a model is served from a copy of its stored
files in DISTILLERY_MODEL_CACHE: made whole in a .partial folder, marked .complete, made once, and a copy cut
short is made again. Deleting a model's files removes the stored ones and this machine's copy and exports.

Django's InMemoryStorage stands in for the remote backend, without the nominal path() it has since Django 5.1
(a name under MEDIA_ROOT where nothing is written): like S3's, its path() raises NotImplementedError."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage, Storage, default_storage

from jobs.models import ModelRecord
from jobs.registry import storage

pytestmark = pytest.mark.django_db

FILES = {
    "config.json": b'{"architectures": ["BertForSequenceClassification"]}',
    "model.safetensors": bytes(range(256)) * 64,
    "vocab.txt": b"[PAD]\n[UNK]\nbon\nmauvais\n",
}


class RemoteStorage(InMemoryStorage):
    """Files kept in memory, with no local path to them."""

    path = Storage.path  # raises NotImplementedError

    def _relative_path(self, name):  # InMemoryStorage finds its nodes through its own path()
        return os.path.relpath(InMemoryStorage.path(self, name), self.location)


@pytest.fixture
def remote(settings, tmp_path):
    """The default storage swapped for one without local paths; the model cache in this test's folder."""
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.RemoteStorage"}}
    settings.DISTILLERY_MODEL_CACHE = tmp_path / "model-cache"
    with pytest.raises(NotImplementedError):  # what model_dir() must take as "no local paths"
        default_storage.path("models")
    return settings.DISTILLERY_MODEL_CACHE


def _stored_record(owner, tmp_path: Path, name: str = "fake") -> ModelRecord:
    folder = tmp_path / f"{name}-folder"
    (folder / "checkpoints").mkdir(parents=True)  # a subfolder is not part of the stored model
    (folder / "checkpoints" / "step-1.pt").write_bytes(b"not stored")
    for file_name, data in FILES.items():
        (folder / file_name).write_bytes(data)
    record = ModelRecord(
        owner=owner, name=name, kind=ModelRecord.Kind.IMPORTED, params={}, metrics={},
        label_names=["negative", "positive"], num_parameters=1, size_bytes=sum(map(len, FILES.values())),
    )
    return storage.store(record, folder)


@pytest.fixture
def record(remote, user, tmp_path) -> ModelRecord:
    return _stored_record(user, tmp_path)


def _replace_stored(record: ModelRecord, name: str, data: bytes) -> None:
    key = f"{record.artifact_prefix}/{name}"
    default_storage.delete(key)
    assert default_storage.save(key, ContentFile(data)) == key


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_the_files_go_to_the_remote_storage_not_to_media_root(record, settings):
    assert isinstance(default_storage._wrapped, RemoteStorage)
    assert record.artifact_files == sorted(FILES)
    for name, data in FILES.items():
        with default_storage.open(f"{record.artifact_prefix}/{name}", "rb") as fh:
            assert fh.read() == data
    assert not any(Path(settings.MEDIA_ROOT).rglob("*"))


def test_model_dir_is_a_complete_copy_in_the_model_cache(record, remote):
    folder = storage.model_dir(record)

    assert folder == remote / Path(record.artifact_prefix).name == storage.local_copy_dir(record)
    assert _contents(folder) == {**FILES, ".complete": b""}
    assert sorted(p.name for p in remote.iterdir()) == [folder.name]  # no .partial left behind


def test_a_complete_copy_is_not_made_again(record):
    first = storage.model_dir(record)
    # A stored model never changes; changing it here shows whether the second call reads storage again.
    _replace_stored(record, "model.safetensors", b"changed in storage")

    second = storage.model_dir(record)

    assert second == first
    assert (second / "model.safetensors").read_bytes() == FILES["model.safetensors"]


def test_a_copy_cut_short_is_made_again_and_goes_with_the_model(record, remote):
    target = storage.local_copy_dir(record)
    partial = target.with_suffix(".partial")
    partial.mkdir(parents=True)  # a copy killed halfway: a truncated file, no .complete
    (partial / "model.safetensors").write_bytes(FILES["model.safetensors"][:100])
    (partial / "stale.bin").write_bytes(b"from an older copy")

    folder = storage.model_dir(record)

    assert folder == target and _contents(folder) == {**FILES, ".complete": b""}
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([target.name, partial.name])  # none of its own
    storage.delete_model_files(record)
    assert not partial.exists() and not target.exists()


def test_a_copy_without_its_complete_marker_is_not_taken_for_the_model(record):
    target = storage.local_copy_dir(record)
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"truncated")
    (target / "stale.bin").write_bytes(b"from an older copy")

    assert _contents(storage.model_dir(record)) == {**FILES, ".complete": b""}


def test_deleting_the_files_removes_the_stored_ones_the_copy_and_the_exports_and_only_this_models(
    record, remote, user, tmp_path
):
    other = _stored_record(user, tmp_path, name="other")
    copy, others_copy = storage.model_dir(record), storage.model_dir(other)
    exports = storage.onnx_exports_dir(record)
    exports.mkdir(parents=True)
    (exports / "model.onnx").write_bytes(b"onnx")
    copy.with_suffix(".partial").mkdir()
    storage.onnx_exports_dir(other).mkdir(parents=True)

    storage.delete_model_files(record)

    assert [n for n in record.artifact_files if default_storage.exists(f"{record.artifact_prefix}/{n}")] == []
    assert not copy.exists() and not copy.with_suffix(".partial").exists() and not exports.exists()
    assert all(default_storage.exists(f"{other.artifact_prefix}/{n}") for n in other.artifact_files)
    assert _contents(others_copy) == {**FILES, ".complete": b""} and storage.onnx_exports_dir(other).is_dir()
    storage.delete_model_files(record)  # files already gone are skipped


class PausingStorage(RemoteStorage):
    """RemoteStorage whose first open() from a thread named "paused" waits until the test lets it go."""

    reached = threading.Event()
    go_on = threading.Event()

    def _open(self, name, mode="rb"):
        if threading.current_thread().name == "paused" and not self.reached.is_set():
            self.reached.set()
            assert self.go_on.wait(30)
        return super()._open(name, mode)


def test_two_copies_at_once_both_end_with_the_model(settings, remote, user, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.PausingStorage"}}
    PausingStorage.reached.clear()
    PausingStorage.go_on.clear()
    record = _stored_record(user, tmp_path)
    outcome: list[object] = []

    def copy():
        try:
            outcome.append(storage.model_dir(record))
        except Exception as exc:
            outcome.append(exc)

    first = threading.Thread(target=copy, name="paused")
    first.start()
    assert PausingStorage.reached.wait(30)  # the first copy is under way, in its .partial folder
    second = storage.model_dir(record)  # e.g. an explanation while the engine loads, or another web process
    PausingStorage.go_on.set()
    first.join(30)

    assert outcome == [second]
    assert _contents(second) == {**FILES, ".complete": b""}
