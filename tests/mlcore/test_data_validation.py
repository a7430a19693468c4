"""read_table refuses unusable files with a one-line message that says what is wrong and where."""

from __future__ import annotations

import pytest

from mlcore.data import DataError, read_table


@pytest.fixture
def table(tmp_path):
    def write(content: str | bytes, name: str = "t.csv"):
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return write


def test_a_file_that_is_not_utf8_names_the_byte_and_its_position(table):
    with pytest.raises(DataError, match=r"^the file is not UTF-8 text \(invalid byte 0xff at position 12, line 2\)"):
        read_table(table(b"text,label\nx\xff,a\ny,b\n"))


def test_latin1_text_is_refused_rather_than_misread(table):
    with pytest.raises(DataError, match="invalid byte 0xe9"):
        read_table(table("text,label\ncaf\u00e9,a\nx,b\n".encode("latin-1")))


def test_an_empty_text_names_its_row(table):
    content = "text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(6)) + "   ,a\n"
    with pytest.raises(DataError, match=r"^row 7: the text is empty$"):
        read_table(table(content))


def test_an_empty_label_names_its_row(table):
    with pytest.raises(DataError, match=r"^row 2: the label is empty$"):
        read_table(table("text,label\nx,a\ny,\n"))


def test_a_row_with_too_many_fields_is_refused(table):
    with pytest.raises(DataError, match=r"^row 2: found 3 fields but the header has 2$"):
        read_table(table("text,label\nx,a\ngreat, loved it,b\n"))


def test_a_single_label_is_not_enough_for_a_classifier(table):
    with pytest.raises(DataError, match=r"^only one label \('pos'\) found; a classifier needs at least 2$"):
        read_table(table("text,label\nx,pos\ny,pos\n"))


def test_a_header_without_rows_is_refused(table):
    with pytest.raises(DataError, match=r"^the file has no data rows$"):
        read_table(table("text,label\n"))


def test_an_empty_file_is_refused(table):
    with pytest.raises(DataError, match=r"^the file is empty$"):
        read_table(table(""))


def test_a_text_over_the_character_limit_names_its_row(table):
    with pytest.raises(DataError, match=r"^row 2: the text is 11 characters long; the limit is 10$"):
        read_table(table("text,label\nshort,a\nhello world,b\n"), max_text_chars=10)


def test_more_rows_than_allowed_are_refused(table):
    with pytest.raises(DataError, match=r"^the file has more than 2 rows; the limit is 2$"):
        read_table(table("text,label\nx,a\ny,b\nz,a\n"), max_rows=2)


def test_exactly_max_rows_is_accepted(table):
    ds, _ = read_table(table("text,label\nx,a\ny,b\n"), max_rows=2)
    assert len(ds) == 2


def test_invalid_json_names_its_line(table):
    content = '{"text": "x", "label": "a"}\n{"text": "y", "label": "b"}\n{"text": "z", label: "a"}\n'
    with pytest.raises(DataError, match=r"^line 3 is not valid JSON: Expecting property name enclosed in double"):
        read_table(table(content, "t.jsonl"))


def test_a_json_array_instead_of_objects_per_line_is_explained(table):
    with pytest.raises(DataError, match=r"^line 1 is not a JSON object \(found an array\); JSONL needs one object"):
        read_table(table('[{"text": "x", "label": "a"}]\n', "t.jsonl"))


def test_a_jsonl_row_without_the_label_key_names_its_line(table):
    with pytest.raises(DataError, match=r"^row 2: no 'label' field$"):
        read_table(table('{"text": "x", "label": "a"}\n{"text": "y"}\n', "t.jsonl"))


def test_a_jsonl_null_text_is_empty(table):
    with pytest.raises(DataError, match=r"^row 1: the text is empty$"):
        read_table(table('{"text": null, "label": "a"}\n{"text": "y", "label": "b"}\n', "t.jsonl"))


def test_a_jsonl_label_that_is_a_list_is_refused(table):
    with pytest.raises(DataError, match=r"^row 1: the label must be a string or a number, not an array$"):
        read_table(table('{"text": "x", "label": ["a"]}\n{"text": "y", "label": "b"}\n', "t.jsonl"))


def test_a_stray_quote_reports_a_parse_error_with_its_line(table):
    with pytest.raises(DataError, match=r"^line 3: the file is not valid CSV \(',' expected after '\"'\)$"):
        read_table(table('text,label\nx,a\n"great" movie,b\n'))


def test_an_unclosed_quote_is_reported_instead_of_swallowing_the_rest_of_the_file(table):
    with pytest.raises(DataError, match=r"^line 4: the file is not valid CSV \(unexpected end of data\)$"):
        read_table(table('text,label\nx,a\n"open quote,b\ny,a\n'))


def test_a_broken_gzip_file_is_refused(table):
    with pytest.raises(DataError, match="gzip-compressed but could not be decompressed"):
        read_table(table(b"\x1f\x8b\x08\x00garbage", "t.csv.gz"))


def test_data_errors_are_value_errors():
    assert issubclass(DataError, ValueError)
