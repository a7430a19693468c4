"""A trained model's folder: HF weights and tokenizer, plus distillery.json (labels, settings, metrics)."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

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


# Weights and exports barely compress (float tensors); deflating them would cost seconds for a few percent.
STORED_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt")


class _Sink:
    """A write-only, unseekable file for zipfile: it keeps what was written until the reader takes it."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def zip_chunks(
    entries: Iterable[tuple[str, Callable[[], IO[bytes]], int]], *, chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """A zip archive of `entries` (archive name, a callable that opens the file, its size in bytes), yielded
    as it is written: no temporary file, and about one chunk of memory whatever the size of the files.

    zipfile writes to an unseekable file with a data descriptor after each member, which every unzip reads.
    Weights are stored as they are, other files deflated."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w") as archive:  # type: ignore[arg-type]
        for name, opener, size in entries:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED if name.endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
            with opener() as src, archive.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as dst:
                while block := src.read(chunk_size):
                    dst.write(block)
                    if out := sink.take():
                        yield out
            if out := sink.take():
                yield out
    if out := sink.take():  # the central directory
        yield out
