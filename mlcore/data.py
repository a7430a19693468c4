"""Labelled text tables: read and validate CSV, TSV and JSONL files, and split them for training.

The web process imports this module to validate uploads, so it must not import torch or transformers.
Every problem with a file is raised as a DataError whose message is meant for the person who uploaded it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

TEXT_COLUMN_CANDIDATES = ("text", "review", "sentence", "content", "document", "body", "comment", "tweet")
LABEL_COLUMN_CANDIDATES = ("label", "labels", "sentiment", "class", "category", "target")
FORMATS = ("csv", "tsv", "jsonl")

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json-lines": "jsonl",
}
_DELIMITERS = {"csv": ",", "tsv": "\t"}  # each format's own; sniff_delimiter may find another
_SNIFFED_DELIMITERS = ",;\t|"
_SNIFF_CHARS = 1024  # the start of the text csv.Sniffer reads: the header and a first row or more
SAME_COLUMN = "the text and label columns must be different (both are {column!r}); choose another for the label"
_GZIP_MAGIC = b"\x1f\x8b"
# A gzip file may inflate to at most this many times its own size. Text tables compress about 2.5:1 (the IMDB
# CSVs) to 7:1 (short repetitive JSONL); only a file of one repeated row goes past 100:1, while a bomb reaches
# gzip's ceiling of about 1000:1. So 100:1 never refuses a real dataset and cuts what a bomb can make of an
# upload tenfold before the byte cap is even reached.
MAX_GZIP_RATIO = 100
# Files that inflate to less than this are not held to the ratio: a few KB of repeated test rows may compress
# past 100:1, and inflating them costs nothing.
_RATIO_FREE_BYTES = 1 << 20
_INFLATE_CHUNK = 1 << 20  # bytes inflated per step: all a refused gzip file ever holds in memory
# The csv module rejects fields over 128 KiB by default, which would hide our own, clearer max_text_chars
# message. Raising the limit is process-wide, so it is only ever raised, to one fixed value (thread-safe).
_CSV_FIELD_LIMIT = 2**31 - 1


class DataError(ValueError):
    """A dataset that cannot be used; str(error) is a one-line message for the person who uploaded it."""


class ColumnChoiceError(DataError):
    """The text or label column could not be found (or is not named right); `columns` are the file's own, to
    choose from."""

    def __init__(self, message: str, *, role: str, columns: list[str]) -> None:
        super().__init__(message)
        self.role, self.columns = role, list(columns)

    def __reduce__(self):  # pickle would call cls(message) without role and columns (a helper process raises it)
        return (partial(type(self), role=self.role, columns=self.columns), self.args)


@dataclass(frozen=True)
class TextDataset:
    """Texts with integer labels that index label_names (sorted, unique)."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if any(not 0 <= y < len(self.label_names) for y in self.labels):
            raise ValueError(f"a label index is outside 0..{len(self.label_names) - 1}")

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> TextDataset:
        """A dataset from (text, label name) pairs that are already valid; label_names are sorted."""
        pairs = list(rows)
        label_names = sorted({label for _, label in pairs})
        index = {name: i for i, name in enumerate(label_names)}
        return cls([text for text, _ in pairs], [index[label] for _, label in pairs], label_names)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Iterable[int]) -> TextDataset:
        """The rows at `indices`, in that order, with the same label_names (so label ids stay comparable)."""
        idx = list(indices)
        return TextDataset([self.texts[i] for i in idx], [self.labels[i] for i in idx], list(self.label_names))

    def label_counts(self) -> dict[str, int]:
        """Rows per label name, in label_names order, zeros included."""
        counts = Counter(self.labels)
        return {name: counts[i] for i, name in enumerate(self.label_names)}


@dataclass(frozen=True)
class TableInfo:
    """What read_table found, for the upload preview and the dataset record."""

    format: str
    columns: list[str]
    text_column: str
    label_column: str
    num_rows: int
    label_counts: dict[str, int]


def detect_format(filename: str) -> str:
    """'csv', 'tsv' or 'jsonl' from the file name's suffix (a trailing .gz is allowed)."""
    name = os.path.basename(str(filename)).lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    dot = name.rfind(".")
    if dot <= 0:
        raise DataError(f"the file name {os.path.basename(str(filename))!r} has no extension; upload CSV, TSV or JSONL")
    suffix = name[dot:]
    if suffix not in _SUFFIX_FORMATS:
        raise DataError(f"unsupported file type {suffix!r}; upload CSV, TSV or JSONL")
    return _SUFFIX_FORMATS[suffix]


def read_table(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,  # noqa: A002 - the public name the web side uses
    text_column: str | None = None,
    label_column: str | None = None,
    max_rows: int = 1_000_000,
    max_text_chars: int = 100_000,
    max_bytes: int | None = None,  # bytes the file may hold once inflated; None: no limit
) -> tuple[TextDataset, TableInfo]:
    """Read a labelled table and validate it for training.

    1. Read the file (see read_file: gzip is inflated, and refused past max_bytes or MAX_GZIP_RATIO before
       its text is built) and decode it as UTF-8, dropping a BOM.
    2. Parse: CSV/TSV need a header row; JSONL holds one JSON object per line.
    3. Pick the text and label columns: the ones asked for, else the first candidate name (any case).
    4. Check every row; row numbers are 1-based: for CSV/TSV row 1 is the first row after the header,
       for JSONL a row number is its line number.
    Blank lines (and CSV rows whose cells are all blank) are skipped.
    """
    fmt, columns, records = _read_records(path, format, max_rows, max_bytes)
    return table_from_records(
        fmt, columns, records, text_column=text_column, label_column=label_column, max_text_chars=max_text_chars
    )


def table_from_records(
    fmt: str,
    columns: list[str],
    records: Iterable[tuple[int, dict[str, object]]],
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    max_text_chars: int = 100_000,
) -> tuple[TextDataset, TableInfo]:
    """Steps 3 and 4 of read_table on (row number, record) pairs from any source (a file, a hub dataset)."""
    text_col = _pick_column(columns, text_column, TEXT_COLUMN_CANDIDATES, "text")
    label_col = _pick_column(columns, label_column, LABEL_COLUMN_CANDIDATES, "label")
    if text_col == label_col:
        raise ColumnChoiceError(SAME_COLUMN.format(column=text_col), role="label", columns=columns)

    texts: list[str] = []
    label_strings: list[str] = []
    for row_no, record in records:
        text = _cell(record, text_col, row_no, "text")
        if len(text) > max_text_chars:
            raise DataError(f"row {row_no}: the text is {len(text):,} characters long; the limit is {max_text_chars:,}")
        texts.append(text)
        label_strings.append(_cell(record, label_col, row_no, "label").strip())

    if not texts:
        raise DataError("the dataset has no rows")
    label_names = sorted(set(label_strings))
    if len(label_names) < 2:
        raise DataError(f"only one label ({label_names[0]!r}) found; a classifier needs at least 2")
    index = {name: i for i, name in enumerate(label_names)}
    dataset = TextDataset(texts, [index[s] for s in label_strings], label_names)
    info = TableInfo(
        format=fmt,
        columns=columns,
        text_column=text_col,
        label_column=label_col,
        num_rows=len(dataset),
        label_counts=dataset.label_counts(),
    )
    return dataset, info


@dataclass
class TextTable:
    """Unlabelled texts to classify, with an id per row when the file has an `id` column."""

    texts: list[str]
    ids: list[str] | None
    format: str
    text_column: str


def read_texts(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,  # noqa: A002 - as in read_table
    text_column: str | None = None,
    max_rows: int = 1_000_000,
    max_text_chars: int = 100_000,
    max_bytes: int | None = None,  # as in read_table
) -> TextTable:
    """Read a table of texts for batch classification: read_table's parsing and checks, no label needed."""
    fmt, columns, records = _read_records(path, format, max_rows, max_bytes)
    text_col = _pick_column(columns, text_column, TEXT_COLUMN_CANDIDATES, "text")
    id_col = next((c for c in columns if c.casefold() == "id" and c != text_col), None)
    texts, ids = [], []
    for row_no, record in records:
        text = _cell(record, text_col, row_no, "text")
        if len(text) > max_text_chars:
            raise DataError(f"row {row_no}: the text is {len(text):,} characters long; the limit is {max_text_chars:,}")
        texts.append(text)
        if id_col is not None:
            value = record.get(id_col)
            ids.append("" if value is None else str(value))
    return TextTable(texts, ids if id_col is not None else None, fmt, text_col)


def split_dataset(
    ds: TextDataset, *, valid_fraction: float, test_fraction: float, seed: int
) -> tuple[TextDataset, TextDataset, TextDataset]:
    """Split into (train, valid, test), stratified by label and deterministic for a given seed.

    Rows are ordered so that every label is spread evenly along the order (a shuffled position within its
    label, scaled to 0..1); valid takes the front, test the next part, train the rest. Any prefix of each
    split is therefore a stratified sample too, which is how max_*_samples caps are applied.
    The order depends only on the texts' order, their label *names* and the seed, so a teacher and its
    student split the same rows identically even when their label ids differ.
    """
    valid, test, train = split_positions(ds, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    return ds.subset(train), ds.subset(valid), ds.subset(test)


def split_positions(
    ds: TextDataset, *, valid_fraction: float, test_fraction: float, seed: int
) -> tuple[list[int], list[int], list[int]]:
    """split_dataset's (valid, test, train) as row positions in ds: what a stored test row points back to."""
    if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError("valid_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    order = stratified_order(ds, seed)
    _, n_valid, n_test = split_sizes(len(order), valid_fraction=valid_fraction, test_fraction=test_fraction)
    return order[:n_valid], order[n_valid : n_valid + n_test], order[n_valid + n_test :]


def stratified_order(ds: TextDataset, seed: int) -> list[int]:
    """Row indices in an order that spreads every label evenly along it: each row is keyed by its shuffled
    rank within its label, scaled to 0..1 (see split_dataset). Any prefix is a stratified sample."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, y in enumerate(ds.labels):
        by_label.setdefault(ds.label_names[y], []).append(i)
    keyed: list[tuple[float, int]] = []
    for name in sorted(by_label):
        group = by_label[name]
        rng.shuffle(group)
        keyed.extend(((rank + rng.random()) / len(group), i) for rank, i in enumerate(group))
    return [i for _, i in sorted(keyed)]


def relabel(ds: TextDataset, label_names: list[str]) -> TextDataset:
    """The dataset with its label ids renumbered to index `label_names`, matched by name.

    Every label of ds must be in label_names (callers check with unknown_labels and word their own error).
    """
    index = {name: i for i, name in enumerate(label_names)}
    renumber = [index[name] for name in ds.label_names]
    return TextDataset(list(ds.texts), [renumber[y] for y in ds.labels], list(label_names))


def unknown_labels(ds: TextDataset, label_names: list[str]) -> list[str]:
    """ds's label names that are not in label_names."""
    return [name for name in ds.label_names if name not in label_names]


def split_sizes(n: int, *, valid_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, valid, test) row counts split_dataset gives n rows: known from the count alone, which is how the
    launch form previews a run's steps without reading the file."""
    n_valid = _split_size(n, valid_fraction)
    n_test = _split_size(n, test_fraction)
    # Train keeps at least one row; shrink the larger held-out split first.
    while n_valid + n_test > max(n - 1, 0):
        if n_valid >= n_test:
            n_valid -= 1
        else:
            n_test -= 1
    return n - n_valid - n_test, n_valid, n_test


def _split_size(n: int, fraction: float) -> int:
    # A requested split is never empty once there is room for all three (n >= 3).
    size = round(n * fraction)
    return max(size, 1) if fraction > 0 and n >= 3 else size


def _read_records(
    path: str | os.PathLike[str],
    format: str | None,  # noqa: A002 - as in read_table
    max_rows: int,
    max_bytes: int | None,
) -> tuple[str, list[str], list[tuple[int, dict]]]:
    """(format, columns, numbered records) of a CSV/TSV/JSONL file, decoded and parsed; no rows is an error."""
    path = Path(path)
    fmt = format if format is not None else detect_format(path.name)
    if fmt not in FORMATS:
        raise DataError(f"unsupported format {fmt!r}; use one of: {', '.join(FORMATS)}")
    content = decode_text(read_file(path, max_bytes=max_bytes))
    if fmt == "jsonl":
        columns, records = _parse_jsonl(content, max_rows)
    else:
        columns, records = _parse_delimited(content, sniff_delimiter(content, _DELIMITERS[fmt]), max_rows)
    if not records:
        raise DataError("the file has no data rows")
    return fmt, columns, records


def read_file(path: str | os.PathLike[str], *, max_bytes: int | None = None, where: str = "") -> bytes | bytearray:
    """A file's bytes, gunzipped when gzip-compressed (told by its magic bytes, not its name).

    Refused with a DataError when it holds more than max_bytes once inflated (None: no limit), or when gzip
    inflates it to more than MAX_GZIP_RATIO times its size. A gzip file is inflated twice: first only
    counted, keeping one chunk at a time, so that a decompression bomb is refused without ever being held;
    then into a buffer of the size counted. `where` names the file in the message when it is one of several.
    """
    prefix = f"{where}: " if where else ""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if fh.read(2) != _GZIP_MAGIC:
            if max_bytes is not None and size > max_bytes:
                raise DataError(f"{prefix}the file is {_amount(size)}; the limit is {_amount(max_bytes)}")
            fh.seek(0)
            return fh.read()
        fh.seek(0)
        try:
            inflated = _inflated_size(fh, size, max_bytes, prefix)
            fh.seek(0)
            return _inflate_into(fh, inflated)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError; EOFError: cut short
            raise DataError(f"{prefix}the file looks gzip-compressed but could not be decompressed ({e})") from None


def _inflated_size(fh: io.BufferedReader, size: int, max_bytes: int | None, prefix: str) -> int:
    """How many bytes a gzip file inflates to, counted a chunk at a time and kept nowhere; a DataError as soon as
    the count passes max_bytes or MAX_GZIP_RATIO times `size`."""
    by_ratio = max(size * MAX_GZIP_RATIO, _RATIO_FREE_BYTES)
    total = 0
    with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
        while chunk := gz.read(_INFLATE_CHUNK):
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:
                raise DataError(f"{prefix}the file inflates to more than {_amount(max_bytes)}; the limit is "
                                f"{_amount(max_bytes)}")  # fmt: skip
            if total > by_ratio:
                raise DataError(
                    f"{prefix}the file inflates to more than {MAX_GZIP_RATIO} times its compressed size of "
                    f"{_amount(size)}; the limit is {MAX_GZIP_RATIO}:1 (text compresses about 3:1)"
                )
    return total


def _inflate_into(fh: io.BufferedReader, inflated: int) -> bytearray:
    """A gzip file inflated into one buffer of the size _inflated_size counted (no second copy to join)."""
    buffer = bytearray(inflated)
    with gzip.GzipFile(fileobj=fh, mode="rb") as gz, memoryview(buffer) as view:
        position = 0
        while chunk := gz.read(_INFLATE_CHUNK):
            if position + len(chunk) > inflated:
                break
            view[position : position + len(chunk)] = chunk
            position += len(chunk)
    if position != inflated or chunk:  # the file changed since it was counted
        raise DataError("the file changed while it was read; upload it again")
    return buffer


def _amount(n: int) -> str:
    return f"{n / 2**20:.4g} MB" if n >= 2**20 else f"{n:,} bytes"


def decode_text(raw: bytes | bytearray, where: str = "") -> str:
    """Bytes (read_file's) as UTF-8 text with any BOM dropped. `where` names the file in the DataError's
    message when it is one of several."""
    prefix = f"{where}: " if where else ""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{prefix}the file is not UTF-8 text (invalid byte 0x{raw[e.start]:02x} at position {e.start}, "
            f"line {line}); save it as UTF-8 and upload it again"
        ) from None


def sniff_delimiter(content: str, default: str) -> str:
    """The delimiter of a CSV or TSV text: `default` (its format's) when that splits the header into several
    columns, else the one csv.Sniffer finds in its first KB (one of , ; tab |) if that one does, else `default`.

    Spreadsheets save CSV with semicolons where the comma is the decimal mark; read with commas such a file is one
    column, offered as both text and label. A file that splits on its own delimiter is never second-guessed, and a
    file of one column (texts to classify) has no other delimiter that splits it, so it stays one column."""
    if _header_width(content, default) > 1:
        return default
    sample = content[:_SNIFF_CHARS]
    if "\n" in sample.rstrip("\r\n"):  # whole lines only: a row cut short would look like another shape
        sample = sample[: sample.rstrip("\r\n").rfind("\n")]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=_SNIFFED_DELIMITERS).delimiter
    except csv.Error:  # no delimiter is used consistently in the sample
        return default
    return sniffed if _header_width(content, sniffed) > 1 else default


def _header_width(content: str, delimiter: str) -> int:
    """How many columns the first row has when split on `delimiter` (0 when that row is not valid so)."""
    reader = csv.reader(io.StringIO(content[:_SNIFF_CHARS * 64], newline=""), delimiter=delimiter, strict=True)
    try:
        return len(next(reader, []))
    except csv.Error:
        return 0


def _parse_delimited(content: str, delimiter: str, max_rows: int) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    kind = "CSV" if delimiter == "," else "TSV"
    # strict: a stray quote is reported with its line instead of silently merging fields or rows.
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter, strict=True)
    rows = _csv_rows(reader, kind)
    header = next(rows, None)
    if header is None:
        raise DataError("the file is empty")
    columns = [c.strip() for c in header]
    records: list[tuple[int, dict[str, str]]] = []
    for row_no, row in enumerate(rows, 1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise DataError(f"row {row_no}: found {len(row)} fields but the header has {len(columns)}")
        _check_row_count(len(records) + 1, max_rows)
        # Column names may repeat; the first one wins, as it does in column detection.
        records.append((row_no, dict(reversed(list(zip(columns, row, strict=True))))))
    return columns, records


def _csv_rows(reader: Any, kind: str) -> Iterator[list[str]]:  # Any: csv's reader type is private
    # csv.Error carries no position; the reader's line_num does.
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"line {reader.line_num}: the file is not valid {kind} ({e})") from None
        yield row


def _parse_jsonl(content: str, max_rows: int) -> tuple[list[str], list[tuple[int, dict[str, object]]]]:
    columns: dict[str, None] = {}  # insertion-ordered union of keys
    records: list[tuple[int, dict[str, object]]] = []
    # Not str.splitlines(): JSON strings may contain U+2028 and friends, which it would split on.
    for line_no, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"line {line_no} is not valid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(
                f"line {line_no} is not a JSON object (found {_json_kind(obj)}); JSONL needs one object per line"
            )
        _check_row_count(len(records) + 1, max_rows)
        columns.update(dict.fromkeys(obj))
        records.append((line_no, obj))
    return list(columns), records


def _check_row_count(count: int, max_rows: int) -> None:
    if count > max_rows:
        raise DataError(f"the file has more than {max_rows:,} rows; the limit is {max_rows:,}")


def _pick_column(columns: list[str], requested: str | None, candidates: tuple[str, ...], role: str) -> str:
    listed = ", ".join(columns) if columns else "(none)"
    folded: dict[str, str] = {}
    for c in columns:
        folded.setdefault(c.casefold(), c)
    if requested is not None:
        if requested in columns:
            return requested
        if requested.strip().casefold() in folded:
            return folded[requested.strip().casefold()]
        raise ColumnChoiceError(
            f"no column named {requested!r}; the columns are: {listed}", role=role, columns=columns
        )
    for name in candidates:
        if name in folded:
            return folded[name]
    raise ColumnChoiceError(
        f"could not find the {role} column (looked for: {', '.join(candidates)}); "
        f"the columns are: {listed}; choose the {role} column",
        role=role, columns=columns,
    )  # fmt: skip


def _cell(record: dict[str, object], column: str, row_no: int, role: str) -> str:
    """The cell as a string; JSON numbers and booleans become str(value), a blank cell is an error."""
    if column not in record:
        raise DataError(f"row {row_no}: no {column!r} field")
    value = record[column]
    if isinstance(value, (dict, list)):
        raise DataError(f"row {row_no}: the {role} must be a string or a number, not {_json_kind(value)}")
    text = "" if value is None else str(value)
    if not text.strip():
        raise DataError(f"row {row_no}: the {role} is empty")
    return text


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
