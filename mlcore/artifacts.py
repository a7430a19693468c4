"""A trained model's folder: HF weights and tokenizer, plus distillery.json (labels, settings, metrics); the
folder zipped as it streams out, and a zip of one unpacked, and its distillery.json checked, when it comes in."""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mlcore.calibration import TEMPERATURE_RANGE
from mlcore.config import ConfigError, DistillConfig, TrainConfig, config_from_dict, field_choices, field_range

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
    """distillery.json's contents, or {} for a folder not written by mlcore (e.g. a plain HF checkpoint). A
    ValueError when it is not a JSON object; what the object holds is checked by check_manifest."""
    path = Path(model_dir) / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if not isinstance(manifest, dict):
        raise ValueError(f"{MANIFEST_NAME} must be a JSON object, got {type(manifest).__name__}")
    return manifest


class ManifestError(ValueError):
    """A distillery.json that does not hold what mlcore writes; the message names the field."""


# The report score_split writes under "<split>/report": its numbers, and the two parts that nest.
_REPORT_NUMBERS = ("accuracy", "macro_f1")
_CLASS_NUMBERS = ("precision", "recall", "f1", "support")
_KINDS = {"finetune": TrainConfig, "distill": DistillConfig}
_MAX_BASE_MODEL_CHARS = 300  # as a model record keeps it


def check_manifest(manifest: dict[str, Any], *, num_labels: int, max_positions: int | None) -> None:
    """Refuse a distillery.json from outside (an imported model's) that does not hold what finetune() and
    distill() write, with a ManifestError naming the field. Each field is optional (a plain HF folder has none):

    - label_names: distinct non-blank strings, as many as the model has labels (num_labels);
    - max_length (and config's): a whole number from 8 to the model's position embeddings (max_positions);
    - truncation: one of TrainConfig's; kind: finetune or distill; base_model: a string;
    - config: parameters that build the kind's config (TrainConfig, or DistillConfig for distill);
    - temperature: the calibration's, a number in mlcore.calibration.TEMPERATURE_RANGE;
    - metrics: finite numbers, except "<split>/report" keys, which hold a classification report (accuracy,
      macro_f1, per_class: {label: {precision, recall, f1, support}}, confusion_matrix: num_labels rows of
      num_labels counts), and "reliability", a reliability diagram (bins of low, high, count, and confidence and
      accuracy: numbers, or null in an empty bin). Nothing else may nest: the int8 comparison and the CPU speed
      are measured by the platform that serves the model, never taken from the file.
    """
    kind = manifest.get("kind", "finetune")
    if kind not in _KINDS:
        raise ManifestError(f"{MANIFEST_NAME}: kind must be 'finetune' or 'distill', got {kind!r}")
    labels = manifest.get("label_names")
    if labels is not None:
        check_label_names(labels, num_labels, f"{MANIFEST_NAME}: label_names")
    base_model = manifest.get("base_model", "")
    if not isinstance(base_model, str) or len(base_model) > _MAX_BASE_MODEL_CHARS:
        raise ManifestError(
            f"{MANIFEST_NAME}: base_model must be a string of at most {_MAX_BASE_MODEL_CHARS} characters"
        )
    if "max_length" in manifest:
        _check_max_length(manifest["max_length"], max_positions, f"{MANIFEST_NAME}: max_length")
    truncation = manifest.get("truncation", TrainConfig.truncation)
    choices = field_choices(TrainConfig, "truncation") or ()
    if truncation not in choices:
        raise ManifestError(
            f"{MANIFEST_NAME}: truncation must be one of {', '.join(map(repr, choices))}, got {truncation!r}"
        )
    if "config" in manifest:
        try:
            config = config_from_dict(_KINDS[kind], manifest["config"])
        except (ConfigError, TypeError) as exc:
            raise ManifestError(f"{MANIFEST_NAME}: config: {exc}") from None
        _check_max_length(config.max_length, max_positions, f"{MANIFEST_NAME}: config's max_length")
    if "temperature" in manifest:
        temperature = manifest["temperature"]
        _check_number(temperature, f"{MANIFEST_NAME}: temperature")
        low, high = TEMPERATURE_RANGE
        if not low <= temperature <= high:
            raise ManifestError(f"{MANIFEST_NAME}: temperature must be in [{low:g}, {high:g}], got {temperature!r}")
    metrics = manifest.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ManifestError(f"{MANIFEST_NAME}: metrics must be an object of numbers")
    for key, value in metrics.items():
        where = f"{MANIFEST_NAME}: metrics[{key!r}]"
        if key.endswith("/report"):
            _check_report(value, where, labels, num_labels)
        elif key == "reliability":
            _check_reliability(value, where)
        else:
            _check_number(value, where)


def check_label_names(labels: Any, num_labels: int, where: str) -> None:
    """Refuse (ManifestError) label names that are not `num_labels` distinct non-blank strings."""
    if not isinstance(labels, list) or not all(isinstance(name, str) and name.strip() for name in labels):
        raise ManifestError(f"{where} must be a list of non-empty strings")
    if len(labels) != num_labels:
        raise ManifestError(f"{where} has {len(labels)} names but the model has {num_labels} labels")
    if len(set(labels)) != len(labels):
        twice = sorted({name for name in labels if labels.count(name) > 1})
        raise ManifestError(f"{where} names {', '.join(map(repr, twice))} more than once")


def _check_max_length(value: Any, max_positions: int | None, where: str) -> None:
    bounds = field_range(TrainConfig, "max_length")
    low = int(bounds.low) if bounds is not None else 8
    high = max_positions if max_positions is not None else int(bounds.high) if bounds is not None else 512
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ManifestError(
            f"{where} must be a whole number from {low} to {high} (the model's position embeddings), got {value!r}"
        )


def _check_number(value: Any, where: str) -> None:
    # bool is an int to Python but not a metric; a float must be finite, and an int fit a double exactly.
    if isinstance(value, float):
        ok = math.isfinite(value)
    else:
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53
    if not ok:
        raise ManifestError(f"{where} must be a finite number, got {_short(value)}")


_BIN_KEYS = {"low", "high", "count", "confidence", "accuracy"}
_MAX_BINS = 100


def _check_reliability(diagram: Any, where: str) -> None:
    if not isinstance(diagram, list) or len(diagram) > _MAX_BINS:
        raise ManifestError(f"{where} must be a list of at most {_MAX_BINS} bins")
    for i, entry in enumerate(diagram):
        if not isinstance(entry, dict) or set(entry) != _BIN_KEYS:
            raise ManifestError(f"{where}[{i}] must hold exactly {', '.join(sorted(_BIN_KEYS))}")
        for key, value in entry.items():
            if value is not None or key not in ("confidence", "accuracy"):
                _check_number(value, f"{where}[{i}][{key!r}]")


def _check_report(report: Any, where: str, labels: list[str] | None, num_labels: int) -> None:
    if not isinstance(report, dict):
        raise ManifestError(f"{where} must be a classification report (an object)")
    unknown = sorted(set(report) - {*_REPORT_NUMBERS, "per_class", "confusion_matrix"})
    if unknown:
        raise ManifestError(f"{where} holds unknown keys: {', '.join(map(repr, unknown))}")
    for key in _REPORT_NUMBERS:
        if key in report:
            _check_number(report[key], f"{where}[{key!r}]")
    per_class = report.get("per_class", {})
    if not isinstance(per_class, dict):
        raise ManifestError(f"{where}['per_class'] must be an object of labels")
    for label, scores in per_class.items():
        inner = f"{where}['per_class'][{_short(label)}]"
        if labels is not None and label not in labels:
            raise ManifestError(f"{inner} is not one of label_names")
        if not isinstance(scores, dict) or set(scores) - set(_CLASS_NUMBERS):
            raise ManifestError(f"{inner} must hold only {', '.join(_CLASS_NUMBERS)}")
        for key, value in scores.items():
            _check_number(value, f"{inner}[{key!r}]")
    matrix = report.get("confusion_matrix", [[0] * num_labels for _ in range(num_labels)])
    square = isinstance(matrix, list) and len(matrix) == num_labels and all(
        isinstance(row, list) and len(row) == num_labels for row in matrix
    )
    counts = square and all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 2**53 for row in matrix for n in row
    )
    if not counts:
        raise ManifestError(f"{where}['confusion_matrix'] must be {num_labels} rows of {num_labels} counts")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


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


@dataclass(frozen=True)
class MemberLimit:
    """What one file of an uploaded model folder may inflate to: a cap in bytes and a ratio to the compressed
    bytes it was read from, both counted as it is read (a zip's directory can lie about either)."""

    kind: str  # how a refusal names the kind of file
    max_bytes: int | None  # None: only the archive's total cap
    max_ratio: int  # inflated bytes per compressed byte
    compresses: str  # what real files of the kind compress to, for the refusal


# Measured on the bundled all-MiniLM-L6-v2: model.safetensors 90,868,376 bytes deflates 1.1:1, tokenizer.json
# 466,247 bytes 2.4:1, vocab.txt 231,508 bytes 2.1:1, config.json 612 bytes 1.8:1. The largest tokenizer files
# in use are tens of MB (a 256k-vocabulary tokenizer.json: about 33 MB); configs are KB. A distillery.json
# holds a confusion matrix, mostly zeros, one number a line: 13 MB at 171:1 for 1,000 labels. Deflate's
# ceiling is about 1030:1, which is what a file of one repeated byte reaches.
WEIGHTS_LIMIT = MemberLimit("weights file", None, 100, "float weights compress about 1.1:1")
TOKENIZER_LIMIT = MemberLimit("tokenizer file", 64 * 2**20, 100, "tokenizer files compress about 2.5:1")
CONFIG_LIMIT = MemberLimit("config file", 16 * 2**20, 250, "configs compress at most about 170:1")
# Files that inflate to less than this are not held to the ratio: a small config of spaces may compress past
# any ratio, and inflating it costs nothing.
RATIO_FREE_BYTES = 1 << 20
_UNPACK_CHUNK = 1 << 20  # bytes inflated per step: about all a refused archive ever holds in memory


def member_limit(name: str) -> MemberLimit:
    """The limit for an accepted file of a model folder, by its name."""
    if name.endswith(".safetensors"):
        return WEIGHTS_LIMIT
    if name.endswith(".json") and name != "tokenizer.json" and name != "vocab.json":
        return CONFIG_LIMIT
    return TOKENIZER_LIMIT


class _Counted:
    """The archive's file, counting the bytes read from it: what a member's compressed data really took,
    whatever the zip's directory says."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def seekable(self) -> bool:
        return True


def unpack_model_archive(
    archive: str | os.PathLike[str], target: str | os.PathLike[str], *, max_bytes: int
) -> list[str]:
    """Unpack a zip of a model folder (as Distillery's download makes it, or the files of any HF
    sequence-classification folder, at its top or in one folder) into `target`; return the names it skipped.

    Only configs, tokenizer files and safetensors weights are taken. ArchiveError, naming the member where one
    is at fault, for members that would land outside the folder, archives whose files add up to more than
    max_bytes, and a file past its kind's MemberLimit (member_limit): more bytes than its cap, or more than
    its ratio times the compressed bytes read for it. Sizes are checked on the zip's directory first and then
    counted as each member is read, since the directory can lie. `target` should be a fresh temporary folder:
    after an error it may hold part of the files."""
    try:
        with open(archive, "rb") as fh, zipfile.ZipFile(counted := _Counted(fh)) as zf:  # type: ignore[arg-type]
            chosen, skipped = _choose_members(zf, max_bytes)
            folder = Path(target)
            folder.mkdir(parents=True, exist_ok=True)
            written = 0
            for base, member in chosen.items():
                written += _unpack_member(zf, member, folder / base, counted, max_bytes - written, max_bytes)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"not a zip archive: {exc}") from None
    return skipped


def _choose_members(zf: zipfile.ZipFile, max_bytes: int) -> tuple[dict[str, zipfile.ZipInfo], list[str]]:
    """The members to unpack, by their name in the model's folder, and the archive names skipped; refused
    (ArchiveError) on what the directory alone shows: paths outside the folder, sizes past the caps, files
    missing."""
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
        raise ArchiveError(f"the model's files add up to more than {_mb(max_bytes)}")
    for base, member in chosen.items():
        limit = member_limit(base)
        if limit.max_bytes is not None and member.file_size > limit.max_bytes:
            size, cap = _mb(member.file_size), _mb(limit.max_bytes)
            raise ArchiveError(f"{member.filename!r} is {size}; the limit for a {limit.kind} is {cap}")
    if "config.json" not in chosen:
        raise ArchiveError("no config.json: zip the folder that holds the model's config.json")
    if not chosen.keys() & _TOKENIZER_FILES:
        raise ArchiveError("no tokenizer files (tokenizer.json or vocab.txt): zip the folder it was saved in")
    if not any(name.endswith(".safetensors") for name in chosen):
        raise ArchiveError("no safetensors weights (model.safetensors); pickled .bin weights are not taken")
    return chosen, skipped


def _unpack_member(
    zf: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path, counted: _Counted, room: int, max_bytes: int
) -> int:
    """Copy one member to `path` a chunk at a time, counting what it inflates to against its MemberLimit, the
    archive's room left (`room` of max_bytes) and its ratio to the compressed bytes read; return its size."""
    limit, name = member_limit(path.name), member.filename
    cap = room if limit.max_bytes is None else min(room, limit.max_bytes)
    start, inflated = counted.bytes_read, 0
    try:
        with zf.open(member) as src, open(path, "wb") as dst:
            while block := src.read(_UNPACK_CHUNK):
                inflated += len(block)
                if inflated > cap:
                    if cap == room:
                        raise ArchiveError(f"the model's files add up to more than {_mb(max_bytes)}")
                    raise ArchiveError(
                        f"{name!r} inflates to more than {_mb(cap)}; the limit for a {limit.kind} is {_mb(cap)}"
                    )
                compressed = counted.bytes_read - start
                if inflated > RATIO_FREE_BYTES and inflated > limit.max_ratio * compressed:
                    raise ArchiveError(
                        f"{name!r} inflates to more than {limit.max_ratio} times its compressed size; the limit "
                        f"for a {limit.kind} is {limit.max_ratio}:1 ({limit.compresses})"
                    )
                dst.write(block)
    except zipfile.BadZipFile as exc:  # e.g. a bad CRC: its data is not what the directory says
        raise ArchiveError(f"{name!r} is damaged, or the zip's directory misstates it: {exc}") from None
    except (zlib.error, EOFError) as exc:
        raise ArchiveError(f"{name!r} could not be decompressed: {exc}") from None
    return inflated


def _mb(size: int) -> str:
    return f"{size / 2**20:.0f} MB" if size >= 2**20 else f"{size:,} bytes"
