"""A deleted model record takes its files with it (storage, this machine's ONNX export) and stops being served
by this process; a delete that is rolled back keeps them."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import transaction

from jobs.registry import storage
from jobs.serving import engines

pytestmark = pytest.mark.django_db


def _files(record, settings) -> tuple[list[str], Path]:
    stored = [f"{record.artifact_prefix}/{name}" for name in record.artifact_files]
    return stored, Path(settings.DISTILLERY_MODEL_CACHE) / "onnx" / Path(record.artifact_prefix).name


def test_deleting_a_model_removes_its_stored_files_and_its_onnx_export(
    trained_model, settings, django_capture_on_commit_callbacks
):
    engine = engines.engine_for(trained_model)  # loaded and exported to ONNX, as serving it does
    assert [key[0] for key in engines.loaded()] == [trained_model.artifact_prefix]
    stored, exports = _files(trained_model, settings)
    assert "model.safetensors" in trained_model.artifact_files
    assert all(default_storage.exists(name) for name in stored) and (exports / "model.onnx").is_file()

    with django_capture_on_commit_callbacks(execute=True):
        trained_model.delete()

    assert [name for name in stored if default_storage.exists(name)] == []
    assert not exports.exists()
    assert engines.loaded() == []  # no longer served by this process
    engine._thread.join(30)
    assert not engine._thread.is_alive()


def test_a_rolled_back_delete_keeps_the_files(trained_model, settings, django_capture_on_commit_callbacks):
    stored, _ = _files(trained_model, settings)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with contextlib.suppress(RuntimeError), transaction.atomic():
            trained_model.delete()
            raise RuntimeError("changed my mind")
    assert callbacks == []
    assert all(default_storage.exists(name) for name in stored)
    assert storage.model_dir(trained_model).is_dir()
