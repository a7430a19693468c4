"""Where a model's files live: under its record's prefix in storage (Django's storage API), copied to a local
folder where the backend has no paths, with this machine's ONNX exports beside the copies.

Runs in: the web process and the workers. A leaf: it imports nothing of jobs but the models and files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from ..files import saved_unless_failed
from ..models import ModelRecord


def store(record: ModelRecord, folder: Path) -> ModelRecord:
    """Copy a model folder's files into storage under the record's prefix, then save the record (its files are
    removed again if it cannot be saved)."""
    with saved_unless_failed() as save:
        names = []
        for path in sorted(folder.iterdir()):
            if path.is_file():
                with path.open("rb") as fh:
                    save(f"{record.artifact_prefix}/{path.name}", File(fh))
                names.append(path.name)
        record.artifact_files = names
        record.save()
    return record


def model_dir(record: ModelRecord) -> Path:
    """A local folder holding the model's files: storage's own folder, or a cached copy of it.

    A copy is made whole in a .partial folder of its own and then renamed into place, so a copy cut short is never
    taken for the model, and two copies at once (an engine loading while an explanation asks, two processes
    sharing DISTILLERY_MODEL_CACHE) never write into each other's folder: the first rename wins, the other copy
    is dropped."""
    try:
        return Path(default_storage.path(record.artifact_prefix))
    except NotImplementedError:
        pass
    target = local_copy_dir(record)
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{target.name}.", suffix=".partial", dir=target.parent))
    try:
        for name in record.artifact_files:
            with default_storage.open(f"{record.artifact_prefix}/{name}", "rb") as src:
                with open(partial / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        (partial / ".complete").touch()
        if not (target / ".complete").exists():
            shutil.rmtree(target, ignore_errors=True)  # an incomplete copy from before
            try:
                partial.rename(target)
            except OSError:  # another copy was renamed into place meanwhile
                if not (target / ".complete").exists():
                    raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)  # gone already when it was renamed
    return target


def model_config(record: ModelRecord) -> dict:
    """The model's config.json (transformers' config: its architecture) as stored, {} when it has none or it does
    not read: a few kilobytes, read through the storage API without copying the model."""
    if "config.json" not in (record.artifact_files or []):
        return {}
    try:
        with default_storage.open(f"{record.artifact_prefix}/config.json", "rb") as fh:
            config = json.loads(fh.read(1_000_000))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def local_copy_dir(record: ModelRecord) -> Path:
    """Where model_dir() copies a record's files when storage has no local path."""
    return Path(settings.DISTILLERY_MODEL_CACHE) / Path(record.artifact_prefix).name


def onnx_exports_dir(record: ModelRecord) -> Path:
    """Where this machine keeps a record's ONNX exports: derived files, beside the cached models, never in the
    stored model's folder."""
    return Path(settings.DISTILLERY_MODEL_CACHE) / "onnx" / Path(record.artifact_prefix).name


def delete_model_files(record: ModelRecord) -> None:
    """Remove a deleted record's files: those in storage, and this machine's derived copies (the local copy of
    a remote storage's files and the ONNX exports in DISTILLERY_MODEL_CACHE). Files already gone are skipped."""
    for name in record.artifact_files:
        default_storage.delete(f"{record.artifact_prefix}/{name}")
    archives = f"{record.artifact_prefix}/archives"  # stored zips (jobs.registry.archive.stored_archive)
    for name in _files_in(archives):
        default_storage.delete(f"{archives}/{name}")
    copy = local_copy_dir(record)
    partials = copy.parent.glob(f"{copy.name}.*partial")  # copies cut short by a process that died
    for folder in (copy, *partials, onnx_exports_dir(record)):
        shutil.rmtree(folder, ignore_errors=True)


def _files_in(prefix: str) -> list[str]:
    """The names of the files in a storage folder; none where the folder is absent (the filesystem raises then,
    S3, which has no folders, answers an empty list)."""
    try:
        return default_storage.listdir(prefix)[1]
    except FileNotFoundError:
        return []
