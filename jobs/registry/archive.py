"""A model's download: its folder as a zip streamed from storage, with a README on how to use it; on a backend
that signs URLs (S3), the zip is stored once beside the model and clients fetch it from the bucket.

Runs in: the web process.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from functools import partial

from django.core.files.storage import default_storage
from django.utils.text import slugify

from mlcore.config import TrainConfig

from ..files import save_chunks
from ..models import ModelRecord


def model_archive(record: ModelRecord) -> tuple[str, Iterator[bytes]]:
    """A zip of the model's folder, streamed from storage: the HF weights, tokenizer and config (load it with
    `from_pretrained`), distillery.json, any shipped ONNX export, and a README on how to use it. Returns the
    file name and the archive's chunks."""
    from mlcore.artifacts import zip_chunks  # imports transformers: here, not at web start

    folder = f"{slugify(record.name) or 'model'}-{record.pk}"
    readme = _archive_readme(record, folder).encode()
    entries = [(f"{folder}/README.md", lambda: io.BytesIO(readme), len(readme))]
    for name in record.artifact_files:
        stored = f"{record.artifact_prefix}/{name}"
        entries.append((f"{folder}/{name}", partial(default_storage.open, stored, "rb"), default_storage.size(stored)))
    return f"{folder}.zip", zip_chunks(entries)


def stored_archive(record: ModelRecord) -> tuple[str, str]:
    """The model's zip as a stored file, built and saved the first time it is asked for: (stored name, file name).
    Its name holds a digest of what goes into it (the README's facts and the files' names and sizes), so a record
    whose README changes (a recalibration) gets a new zip rather than a stale one."""
    folder = f"{slugify(record.name) or 'model'}-{record.pk}"
    digest = hashlib.sha256(_archive_readme(record, folder).encode())
    for name in record.artifact_files:
        digest.update(f"\0{name}\0{default_storage.size(f'{record.artifact_prefix}/{name}')}".encode())
    stored = f"{archives_prefix(record)}/{digest.hexdigest()[:16]}.zip"
    if not default_storage.exists(stored):
        filename, chunks = model_archive(record)
        stored = save_chunks(stored, chunks)
    return stored, f"{folder}.zip"


def archives_prefix(record: ModelRecord) -> str:
    """Where a record's stored zips live (removed with the model: jobs.registry.storage.delete_model_files)."""
    return f"{record.artifact_prefix}/archives"


def _archive_readme(record: ModelRecord, folder: str) -> str:
    # What a record holds is read with care: records imported before distillery.json was checked
    # (mlcore.artifacts.check_manifest) may hold any JSON, and a download must not fail on it.
    params = record.params if isinstance(record.params, dict) else {}
    truncation = params.get("truncation", TrainConfig.truncation)
    max_length = params.get("max_length", TrainConfig.max_length)
    cut = (
        "keep the first quarter of the token budget from the start of a text and the rest from its end "
        "(`truncation: head_tail`), as Distillery's classify does"
        if truncation == "head_tail" else "keep the first tokens of a text"
    )
    accuracy = record.test_accuracy
    labels = record.label_names if isinstance(record.label_names, list) else []
    lines = [
        f"# {record.name}",
        "",
        f"A {record.get_kind_display().lower()} text classifier exported from Distillery (model #{record.pk}).",
        "",
        f"- labels: {', '.join(map(str, labels))}",
        f"- base model: {record.base_model or '-'}",
        f"- parameters: {record.num_parameters:,}",
        f"- test accuracy: {accuracy:.4f}" if accuracy is not None else "- test accuracy: -",
        f"- trained at max_length {max_length}; to match its results, {cut}",
        "",
        "distillery.json holds its hyperparameters and every metric.",
        "",
        "## Use it with transformers",
        "",
        "```python",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline",
        "",
        f'classify = pipeline("text-classification", model="{folder}", tokenizer="{folder}", truncation=True,',
        f"                    max_length={max_length})",
        'print(classify("A wonderful film."))',
        "```",
    ]
    onnx = [name for name in record.artifact_files if name.endswith(".onnx")]
    if onnx:
        lines += [
            "",
            "## Or with ONNX Runtime",
            "",
            f"`{onnx[0]}` is the export Distillery serves (inputs `input_ids`, `attention_mask`; output: logits).",
        ]
    return "\n".join(lines) + "\n"
