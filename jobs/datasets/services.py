"""Datasets from an upload, a held upload, a server folder or the Hugging Face Hub, validated by mlcore before
anything is stored; and a stored dataset read back for a job.

Runs in: the web process (create_*) and the workers (load_dataset).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage

from mlcore import catalogue
from mlcore.data import SAME_COLUMN, ColumnChoiceError, DataError, TextDataset, detect_format, read_table
from mlcore.folders import folder_splits, is_folder_dataset, read_folder
from mlcore.hubdata import read_hub_dataset
from mlcore.preview import table_info

from .. import offload
from ..files import check_upload_size, is_dir, local_file, local_upload, saved_unless_failed, upload_limit_bytes
from ..models import Dataset
from ..quota import check_quota
from . import quality
from .held import read_held


def create_dataset(
    owner, name: str, upload, *, text_column: str | None = None, label_column: str | None = None
) -> Dataset:
    """Validate an uploaded file with mlcore and store it; raise ValidationError and store nothing if bad.

    1. check the columns asked for are two, the size sent and the type from the file name;
    2. read it in a helper process (jobs.offload), a gzip file refused as soon as it inflates past the same
       limit (mlcore.data.read_file), then parse and validate the whole file (encoding, columns, empty texts,
       labels);
    3. check the user's storage quota (jobs.quota) for the file's size;
    4. save the file through the storage API and the row in one go, removing the file if the row fails.
    """
    if text_column and label_column and text_column.strip() == label_column.strip():  # refused before it is read
        raise ValidationError({"label_column": SAME_COLUMN.format(column=label_column.strip())})
    check_upload_size(upload)
    try:
        fmt = detect_format(upload.name)
        with local_upload(upload) as path:
            # In a helper process: parsing is pure Python and would hold up the web process's other requests.
            info = offload.run(
                table_info, path, format=fmt, text_column=text_column or None, label_column=label_column or None,
                max_bytes=upload_limit_bytes(),
            )  # fmt: skip
    except ColumnChoiceError as exc:  # the file's columns go with the message, to choose from
        raise ValidationError({f"{exc.role}_column": str(exc), "columns": exc.columns}) from None
    except DataError as exc:
        raise ValidationError({"file": str(exc)}) from None
    except offload.HelperLost as exc:
        raise ValidationError({"file": f"the file could not be read to the end: {exc}; try again"}) from None

    check_quota(owner, upload.size)
    upload.seek(0)
    with saved_unless_failed() as save:
        dataset = Dataset.objects.create(
            owner=owner,
            name=name or Path(upload.name).stem,
            file=save(f"datasets/{uuid.uuid4().hex}/{Path(upload.name).name}", upload),
            original_filename=Path(upload.name).name,
            format=info.format,
            text_column=info.text_column,
            label_column=info.label_column,
            num_rows=info.num_rows,
            labels=list(info.label_counts),  # in label order
            label_counts=info.label_counts,
            size_bytes=upload.size,
        )
    quality.queue_report(dataset)
    return dataset


def create_dataset_from_held(
    owner, name: str, token: str, *, text_column: str | None = None, label_column: str | None = None
) -> Dataset:
    """create_dataset() on a held upload; the held copy goes once the dataset is made (and stays for another
    choice if it is refused)."""
    held = read_held(owner, token)
    if held is None or not default_storage.exists(held["name"]):
        raise ValidationError({"file": "the file waited too long for its columns; choose it again"})
    with default_storage.open(held["name"], "rb") as fh:
        upload = File(fh, name=Path(held["name"]).name)
        dataset = create_dataset(owner, name, upload, text_column=text_column, label_column=label_column)
    default_storage.delete(held["name"])
    return dataset


def dataset_folders() -> list[dict]:
    """The folder datasets under DISTILLERY_DATASET_ROOTS that can be imported: [{"path", "splits"}], each root
    itself when it is one, else its subfolders that are."""
    found = []
    for root in settings.DISTILLERY_DATASET_ROOTS:
        candidates = [root] if is_folder_dataset(root) else sorted(p for p in root.glob("*/") if is_folder_dataset(p))
        found += [{"path": str(path), "splits": folder_splits(path)} for path in candidates]
    return found


def create_folder_dataset(owner, name: str, path: str, split: str = "") -> Dataset:
    """Import a server folder in the IMDB layout (mlcore.folders) as a dataset. Store nothing if it is bad.

    `path` must lie under one of DISTILLERY_DATASET_ROOTS (a relative path is taken from the first root that
    has it); anything else is refused, so that users cannot read arbitrary server files.
    """
    folder = _allowed_folder(path)
    try:
        data, info = read_folder(folder, split or None, max_bytes=upload_limit_bytes())
        source = f"{folder.name}/{info.split}" if info.split else folder.name
        return _store_rows(owner, name or source.replace("/", "-"), data, source=source, field="server_path")
    except DataError as exc:
        raise ValidationError({"server_path": str(exc)}) from None


def create_hub_dataset(
    owner, name: str, dataset_id: str, split: str = "train", *, config: str = "",
    text_column: str | None = None, label_column: str | None = None,
) -> Dataset:  # fmt: skip
    """Import one split of a Hugging Face Hub dataset (needs internet) as a dataset. Store nothing if it is bad.

    Only hub ids ("name" or "owner/name") are taken: load_dataset would also open server paths.
    """
    dataset_id, split = (dataset_id or "").strip(), (split or "train").strip()
    if not catalogue.is_hub_id(dataset_id):
        raise ValidationError({"hub_id": f"{dataset_id!r} is not a hub dataset id such as 'stanfordnlp/imdb'"})
    try:
        data, info = read_hub_dataset(
            dataset_id, split, config=config or None, text_column=text_column or None,
            label_column=label_column or None,
        )  # fmt: skip
        source = f"{dataset_id}:{config}/{split}" if config else f"{dataset_id}/{split}"
        return _store_rows(
            owner, name or source.replace("/", "-"), data, source=source,
            columns=(info.text_column, info.label_column), field="hub_id",
        )  # fmt: skip
    except DataError as exc:
        raise ValidationError({"hub_id": str(exc)}) from None


def _store_rows(
    owner, name: str, data: TextDataset, *, source: str, columns: tuple[str, str] = ("text", "label"), field: str
) -> Dataset:
    """Write a dataset read from elsewhere (a folder, the hub) as one gzipped JSONL in storage, so that jobs read
    it like an upload; its record names `source`. The file is removed if the record cannot be saved.

    A DataError when the JSONL would inflate past the upload limit: load_dataset reads it under that limit. A
    ValidationError on `field` (the source's) when the gzipped file would take the owner past their storage
    quota."""
    text_key, label_key = columns
    rows = zip(data.texts, data.labels, strict=True)
    lines = "".join(
        json.dumps({text_key: t, label_key: data.label_names[y]}, ensure_ascii=False) + "\n" for t, y in rows
    ).encode("utf-8")
    if len(lines) > upload_limit_bytes():
        raise DataError(
            f"the dataset comes to {len(lines) / 2**20:.1f} MB as JSONL; the limit is "
            f"{settings.DISTILLERY_MAX_UPLOAD_MB} MB (DISTILLERY_MAX_UPLOAD_MB)"
        )
    body = gzip.compress(lines, compresslevel=6)
    check_quota(owner, len(body), field=field)
    filename = re.sub(r"[^\w.-]+", "-", source).strip("-") + ".jsonl.gz"
    with saved_unless_failed() as save:
        stored = save(f"datasets/{uuid.uuid4().hex}/{filename}", File(io.BytesIO(body)))
        dataset = Dataset.objects.create(
            owner=owner, name=name[:200], file=stored, original_filename=source[:255], format="jsonl",
            text_column=text_key, label_column=label_key, num_rows=len(data), labels=data.label_names,
            label_counts=data.label_counts(), size_bytes=len(body),
        )  # fmt: skip
    quality.queue_report(dataset)
    return dataset


def _allowed_folder(path: str) -> Path:
    roots = settings.DISTILLERY_DATASET_ROOTS
    if not roots:
        raise ValidationError({"server_path": "this server imports no folders (DISTILLERY_DATASET_ROOTS is not set)"})
    given = Path(path or "")
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    for candidate in candidates:
        resolved = candidate.resolve()  # symlinks and ".." resolved before the check, not after
        if any(resolved.is_relative_to(root) for root in roots) and is_dir(resolved):
            return resolved
    raise ValidationError(
        {"server_path": f"no dataset folder {path!r} under the folders this server imports from "
                        f"({', '.join(map(str, roots))})"}
    )  # fmt: skip


def load_dataset(dataset: Dataset) -> TextDataset:
    """The rows of a stored dataset, read under the upload limit like the upload was (a worker's memory is
    worth as much as the web process's)."""
    with local_file(dataset.file.name) as path:
        data, _ = read_table(
            path, format=dataset.format, text_column=dataset.text_column, label_column=dataset.label_column,
            max_bytes=upload_limit_bytes(),
        )  # fmt: skip
    return data
