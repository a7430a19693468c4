"""read_table finds the text and label columns by common names, or takes the ones it is given."""

from __future__ import annotations

import pytest

from mlcore.data import DataError, read_table


@pytest.fixture
def table(tmp_path):
    def write(content: str, name: str = "t.csv"):
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return path

    return write


def test_review_and_sentiment_columns_are_detected_whatever_their_case(table):
    ds, info = read_table(table("id,Review,Sentiment\n1,great,positive\n2,bad,negative\n"))
    assert (info.text_column, info.label_column) == ("Review", "Sentiment")
    assert ds.texts == ["great", "bad"]


def test_the_first_candidate_name_wins_when_several_are_present(table):
    _, info = read_table(table("comment,text,category,label\nc1,t1,x,a\nc2,t2,y,b\n"))
    assert (info.text_column, info.label_column) == ("text", "label")


def test_explicit_columns_are_used_even_when_others_would_be_detected(table):
    ds, info = read_table(
        table("text,label,summary,stars\nt1,a,s1,5\nt2,b,s2,1\n"), text_column="summary", label_column="stars"
    )
    assert (info.text_column, info.label_column) == ("summary", "stars")
    assert ds.texts == ["s1", "s2"]
    assert ds.label_names == ["1", "5"]


def test_an_explicit_column_matches_case_insensitively(table):
    _, info = read_table(table("Body,Target\nx,a\ny,b\n"), text_column="body", label_column="TARGET")
    assert (info.text_column, info.label_column) == ("Body", "Target")


def test_a_missing_explicit_column_lists_the_columns_there_are(table):
    with pytest.raises(DataError, match=r"^no column named 'txt'; the columns are: text, label$"):
        read_table(table("text,label\nx,a\ny,b\n"), text_column="txt")


def test_undetectable_columns_say_which_names_were_looked_for(table):
    with pytest.raises(DataError) as caught:
        read_table(table("a,b\nx,1\ny,2\n"))
    message = str(caught.value)
    assert message.startswith("could not find the text column (looked for: text, review, sentence,")
    assert "the columns are: a, b" in message


def test_an_undetectable_label_column_is_reported_as_the_label_column(table):
    with pytest.raises(DataError, match=r"could not find the label column \(looked for: label, labels, sentiment"):
        read_table(table("text,stars\nx,1\ny,2\n"))


def test_the_same_column_cannot_be_text_and_label(table):
    with pytest.raises(DataError, match="must be different"):
        read_table(table("text,label\nx,a\ny,b\n"), text_column="text", label_column="text")


def test_jsonl_columns_are_the_keys_in_order_of_appearance(table):
    path = table('{"id": 1, "text": "x", "label": "a"}\n{"text": "y", "label": "b", "extra": 0}\n', "t.jsonl")
    _, info = read_table(path)
    assert info.columns == ["id", "text", "label", "extra"]
