"""A .csv separated by semicolons, tabs or pipes is read as its columns (csv.Sniffer on its first KB), while a file
its own delimiter splits, or a file of one column, is read as before."""

from __future__ import annotations

import gzip

import pytest

from mlcore.data import ColumnChoiceError, DataError, read_table, read_texts, sniff_delimiter


@pytest.fixture
def table(tmp_path):
    def write(content: str | bytes, name: str = "t.csv"):
        path = tmp_path / name
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    return write


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_csv_separated_otherwise_is_read_as_its_columns(table, delimiter):
    d = delimiter
    data, info = read_table(table(f'text{d}label\ngreat, fun{d}pos\n"dull{d} long"{d}neg\n'))
    assert info.columns == ["text", "label"]
    assert data.texts == ["great, fun", f"dull{d} long"] and data.label_names == ["neg", "pos"]


def test_a_semicolon_file_whose_first_row_is_longer_than_the_sample_is_still_sniffed(table):
    long_text = "word, " * 400  # 2.4 KB: the sample holds the header only
    data, info = read_table(table(f"text;label\n{long_text};pos\nshort;neg\n"))
    assert info.columns == ["text", "label"] and data.texts[0] == long_text


def test_a_comma_file_whose_texts_hold_semicolons_stays_comma_separated(table):
    data, info = read_table(table("text,label\na; b; c,pos\nd; e,neg\n"))
    assert info.columns == ["text", "label"] and data.texts == ["a; b; c", "d; e"]


def test_a_file_of_one_column_stays_one_column(table):
    texts = read_texts(table('text\nhello; world\n"fine, thanks"\n'))
    assert texts.text_column == "text" and texts.texts == ["hello; world", "fine, thanks"]


def test_a_tsv_separated_by_semicolons_is_read_as_its_columns(table):
    _, info = read_table(table("review;stars\nok;1\nfine;5\n", "t.tsv"), text_column="review", label_column="stars")
    assert info.columns == ["review", "stars"]


def test_a_gzipped_semicolon_file_is_sniffed_after_the_size_limits(table):
    body = "text;label\n" + "a fine film;pos\nno;neg\n" * 20
    path = table(gzip.compress(body.encode()), "t.csv.gz")
    data, _ = read_table(path)
    assert len(data) == 40
    with pytest.raises(DataError, match="inflates to more than"):
        read_table(path, max_bytes=100)  # the limit holds whatever the delimiter


def test_what_sniffing_decides(table):
    assert sniff_delimiter("a;b\n1;2\n", ",") == ";"
    assert sniff_delimiter('"a";"b"\n"1, 2";"3"\n', ",") == ";"  # quoted, with a comma inside
    assert sniff_delimiter("a,b\n1;2;3\n", ",") == ","  # its own delimiter splits the header: kept
    assert sniff_delimiter("text\nx; y\n", ",") == ","  # nothing splits the header
    assert sniff_delimiter("", ",") == ","


def test_the_same_column_for_text_and_label_is_a_column_choice_to_make_again(table):
    with pytest.raises(ColumnChoiceError) as raised:
        read_table(table("review;stars\nok;1\nfine;5\n"), text_column="stars", label_column="Stars")
    assert raised.value.role == "label" and raised.value.columns == ["review", "stars"]
    assert str(raised.value).startswith("the text and label columns must be different (both are 'stars')")
