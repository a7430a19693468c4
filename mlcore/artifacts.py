"""A trained model's folder: HF weights and tokenizer, plus distillery.json (labels, settings, metrics)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

MANIFEST_NAME = "distillery.json"


def save_model(
    output_dir: str | os.PathLike[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    manifest: dict[str, Any],
) -> int:
    """Write weights (safetensors), tokenizer and manifest to output_dir; return the folder's size in bytes."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # Written last: its presence means the folder is complete.
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return folder_size(folder)


def read_manifest(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """distillery.json's contents, or {} for a folder not written by mlcore (e.g. a plain HF checkpoint)."""
    path = Path(model_dir) / MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def folder_size(folder: str | os.PathLike[str]) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
