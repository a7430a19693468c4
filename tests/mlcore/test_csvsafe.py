"""CSV formula injection: a text cell that a spreadsheet would run (=, +, -, @, tab, carriage return first) is
written with a leading single quote, in the helper and in the batch classification CSV; numbers the app
computed stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from mlcore import csvsafe
from mlcore.batchfile import classify_table
from mlcore.data import TextTable
from mlcore.inference import Classifier

DANGEROUS = ["=", "+", "-", "@", "\t", "\r"]


def _written(row: list) -> list[str]:
    out = io.StringIO()
    csvsafe.writer(out).writerow(row)
    return next(csv.reader(io.StringIO(out.getvalue(), newline="")))


@pytest.mark.parametrize("start", DANGEROUS)
def test_a_text_starting_with_a_formula_character_gets_a_single_quote(start):
    text = f'{start}HYPERLINK("http://evil")'
    assert csvsafe.cell(text) == "'" + text
    assert _written([text]) == ["'" + text]


def test_a_text_that_looks_like_a_negative_number_is_still_text():
    assert _written(["-1", "+1", "-0.5"]) == ["'-1", "'+1", "'-0.5"]


def test_numbers_the_app_computed_are_written_as_numbers():
    assert _written([-1, -0.5, 0, 3, 1e-06, True, None, ""]) == ["-1", "-0.5", "0", "3", "1e-06", "True", "", ""]


@pytest.mark.parametrize("text", ["plain", "1,2", "a=b", " =1+1", "'quoted", "", "negative", "2024-01-01"])
def test_other_texts_are_written_as_they_are(text):
    assert _written([text]) == [text]


def test_writerows_checks_every_row():
    out = io.StringIO()
    csvsafe.writer(out, lineterminator="\n").writerows([["=a", 1], ["b", "@c"]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["'=a", "1"], ["b", "'@c"]]


# ------------------------------------------------------------- the batch classification CSV


@pytest.fixture(scope="module")
def classifier(tiny_model_dir) -> Classifier:
    return Classifier.load(tiny_model_dir)


def test_the_classified_csv_quotes_ids_labels_and_texts_and_keeps_the_probabilities_numbers(classifier, tmp_path):
    # Labels come from the user's dataset (or an imported model's config): give the model dangerous ones.
    classifier.label_names = ["=negative", "-positive"]
    texts = [f"{start}cmd|' /C calc'!A0 good great film" for start in DANGEROUS] + ["-1", "plain good film"]
    ids = [f"{start}id" for start in DANGEROUS] + ["+1", "7"]
    out = tmp_path / "out.csv"
    classify_table(classifier, TextTable(texts, ids, "csv", "text"), out)

    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header == ["row", "id", "label", "probability", "p_=negative", "p_-positive", "truncated", "text"]
    assert [r[1] for r in body] == ["'" + i for i in ids[:-1]] + ["7"]
    assert [r[-1] for r in body] == ["'" + t for t in texts[:-1]] + ["plain good film"]
    assert {r[2] for r in body} <= {"'=negative", "'-positive"}
    for r in body:
        assert r[0].isdigit() and r[6] in ("0", "1")
        probability, p_negative, p_positive = (float(v) for v in r[3:6])  # numbers, no quote in front
        assert p_negative + p_positive == pytest.approx(1.0, abs=1e-5)
        assert probability == max(p_negative, p_positive)
