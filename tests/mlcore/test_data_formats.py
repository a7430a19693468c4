"""read_table reads CSV, TSV and JSONL (optionally gzipped), and detect_format names them from the suffix."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mlcore.data import DataError, detect_format, read_table


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("reviews.csv", "csv"),
        ("REVIEWS.CSV", "csv"),
        ("a.tsv", "tsv"),
        ("a.tab", "tsv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json-lines", "jsonl"),
        ("a.csv.gz", "csv"),
        ("dir/a.jsonl.gz", "jsonl"),
    ],
)
def test_the_format_follows_the_suffix(filename, expected):
    assert detect_format(filename) == expected


def test_an_unsupported_suffix_is_refused_with_the_formats_we_accept():
    with pytest.raises(DataError, match=r"^unsupported file type '\.xlsx'; upload CSV, TSV or JSONL$"):
        detect_format("data.xlsx")


def test_a_name_without_a_suffix_is_refused():
    with pytest.raises(DataError, match="has no extension"):
        detect_format("data")


def test_a_csv_is_read_with_sorted_label_names_and_label_ids(tmp_path):
    path = write(tmp_path, "r.csv", 'text,label\n"great, really",pos\nawful,neg\nfine film,pos\n')
    ds, info = read_table(path)
    assert ds.texts == ["great, really", "awful", "fine film"]
    assert ds.label_names == ["neg", "pos"]
    assert ds.labels == [1, 0, 1]
    assert info.format == "csv"
    assert info.columns == ["text", "label"]
    assert (info.text_column, info.label_column) == ("text", "label")
    assert info.num_rows == 3
    assert info.label_counts == {"neg": 1, "pos": 2}


def test_a_tsv_is_read(tmp_path):
    path = write(tmp_path, "r.tsv", "label\ttext\npos\tgood, fun\nneg\tbad\n")
    ds, info = read_table(path)
    assert ds.texts == ["good, fun", "bad"]
    assert [ds.label_names[y] for y in ds.labels] == ["pos", "neg"]
    assert info.format == "tsv"


def test_a_jsonl_file_with_numeric_and_boolean_labels_gets_string_labels(tmp_path):
    lines = [
        {"text": "a", "label": 1},
        {"text": "b", "label": 0},
        {"text": "c", "label": True},
        {"text": "d", "label": 1},
    ]
    path = write(tmp_path, "r.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    ds, info = read_table(path)
    assert ds.label_names == ["0", "1", "True"]
    assert [ds.label_names[y] for y in ds.labels] == ["1", "0", "True", "1"]
    assert info.format == "jsonl"
    assert info.num_rows == 4


def test_a_utf8_bom_is_dropped_so_the_first_column_is_found(tmp_path):
    path = write(tmp_path, "r.csv", "\ufefftext,label\nété,a\nhiver,b\n".encode())
    ds, info = read_table(path)
    assert info.columns == ["text", "label"]
    assert ds.texts == ["été", "hiver"]


def test_a_gzipped_file_is_decompressed(tmp_path):
    path = write(tmp_path, "r.csv.gz", gzip.compress(b"text,label\nx,a\ny,b\n"))
    ds, _ = read_table(path)
    assert ds.texts == ["x", "y"]


def test_an_explicit_format_overrides_the_file_name(tmp_path):
    path = write(tmp_path, "upload_8f3a.bin", '{"text": "x", "label": "a"}\n{"text": "y", "label": "b"}\n')
    ds, info = read_table(path, format="jsonl")
    assert info.format == "jsonl"
    assert len(ds) == 2


def test_quoted_multiline_texts_and_crlf_line_ends_are_kept_intact(tmp_path):
    path = write(tmp_path, "r.csv", 'text,label\r\n"line one\r\nline two",a\r\nother,b\r\n')
    ds, _ = read_table(path)
    assert ds.texts == ["line one\r\nline two", "other"]


def test_blank_lines_and_blank_rows_are_skipped(tmp_path):
    path = write(tmp_path, "r.csv", "text,label\nx,a\n\n,\ny,b\n")
    ds, _ = read_table(path)
    assert ds.texts == ["x", "y"]


def test_labels_are_stripped_but_texts_are_not(tmp_path):
    path = write(tmp_path, "r.csv", "text,label\n  spaced ,pos \nx, neg\n")
    ds, _ = read_table(path)
    assert ds.label_names == ["neg", "pos"]
    assert ds.texts[0] == "  spaced "


def test_a_text_longer_than_the_csv_modules_default_field_limit_is_accepted(tmp_path):
    long_text = "word " * 40_000  # 200,000 characters, over csv's default 131,072
    path = write(tmp_path, "r.csv", f"text,label\n{long_text},a\nshort,b\n")
    ds, _ = read_table(path, max_text_chars=300_000)
    assert len(ds.texts[0]) == 200_000
