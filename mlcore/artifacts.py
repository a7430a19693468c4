"""A trained model's folder: HF weights and tokenizer, plus distillery.json (labels, settings, metrics)."""

from __future__ import annotations

import json
import os
import re
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


class ArchiveError(ValueError):
    """A model archive that cannot be unpacked safely; the message says why."""


# What a model folder may hold when it comes from outside: configs, tokenizers and safetensors weights. Pickled
# weights (.bin, .pt) could run code when loaded, and a model's own ONNX export is made where it is served, so
# neither is taken from an upload.
_ACCEPTED = re.compile(
    r"(config\.json|generation_config\.json|distillery\.json|tokenizer\.json|tokenizer_config\.json"
    r"|special_tokens_map\.json|added_tokens\.json|vocab\.txt|vocab\.json|merges\.txt|spiece\.model"
    r"|sentencepiece\.bpe\.model|model(-\d{5}-of-\d{5})?\.safetensors|model\.safetensors\.index\.json)"
)


_TOKENIZER_FILES = {"tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model"}


def unpack_model_archive(
    archive: str | os.PathLike[str], target: str | os.PathLike[str], *, max_bytes: int
) -> list[str]:
    """Unpack a zip of a model folder (as Distillery's download makes it, or the files of any HF
    sequence-classification folder, at its top or in one folder) into `target`; return the names it skipped.

    Only configs, tokenizer files and safetensors weights are taken; members that would land outside the
    folder, and archives whose files add up to more than max_bytes (counted as they are read: a zip's directory
    can lie), raise ArchiveError. `target` should be a fresh temporary folder: after an error it may hold part of
    the files."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            names = [m.filename for m in members]
            if not members:
                raise ArchiveError("the archive is empty")
            for name in names:
                parts = name.replace("\\", "/").split("/")
                if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
                    raise ArchiveError(f"{name!r} would land outside the model's folder")
            tops = {n.split("/")[0] for n in names if "/" in n}
            prefix = f"{tops.pop()}/" if len(tops) == 1 and all("/" in n for n in names) else ""
            chosen, skipped = {}, []
            for member in members:
                base = member.filename[len(prefix):]
                if "/" in base or not _ACCEPTED.fullmatch(base):
                    skipped.append(member.filename)
                    continue
                chosen[base] = member
            if sum(m.file_size for m in chosen.values()) > max_bytes:
                raise ArchiveError(f"the model's files add up to more than {max_bytes / 2**20:.0f} MB")
            if "config.json" not in chosen:
                raise ArchiveError("no config.json: zip the folder that holds the model's config.json")
            if not chosen.keys() & _TOKENIZER_FILES:
                raise ArchiveError("no tokenizer files (tokenizer.json or vocab.txt): zip the folder it was saved in")
            if not any(name.endswith(".safetensors") for name in chosen):
                raise ArchiveError("no safetensors weights (model.safetensors); pickled .bin weights are not taken")
            folder = Path(target)
            folder.mkdir(parents=True, exist_ok=True)
            written = 0
            for base, member in chosen.items():
                with zf.open(member) as src, open(folder / base, "wb") as dst:
                    while block := src.read(1 << 20):
                        written += len(block)
                        if written > max_bytes:  # the directory's sizes can lie
                            raise ArchiveError(f"the model's files add up to more than {max_bytes / 2**20:.0f} MB")
                        dst.write(block)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"not a zip archive: {exc}") from None
    return skipped
