"""Reading unlabelled texts and writing the classified CSV (mlcore.data.read_texts, mlcore.batchfile)."""

from __future__ import annotations

import csv

import pytest

from mlcore.batchfile import CHUNK_ROWS, FIRST_ROWS, TEXT_CHARS, ResultSummary, classify_table
from mlcore.callbacks import Cancelled
from mlcore.data import DataError, TextTable, read_texts
from mlcore.inference import Classifier


@pytest.fixture(scope="module")
def classifier(tiny_model_dir) -> Classifier:
    return Classifier.load(tiny_model_dir)


def test_texts_are_read_with_ids_and_without_labels(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"ID": 7, "review": "good"}\n\n{"ID": null, "review": "bad"}\n')
    table = read_texts(path)
    assert (table.texts, table.ids, table.text_column, table.format) == (["good", "bad"], ["7", ""], "review", "jsonl")
    plain = tmp_path / "p.csv"
    plain.write_text("text,other\nhello,x\n")
    assert read_texts(plain).ids is None


@pytest.mark.parametrize("content, message", [
    ("words\nhi\n", "could not find the text column"),
    ("text\nok\n\"\"\n", None),  # an all-blank row is skipped like in read_table
    ("text,n\nok,1\n\" \",2\n", "row 2: the text is empty"),
])
def test_bad_tables_say_which_row(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    if message is None:
        assert read_texts(path).texts == ["ok"]
    else:
        with pytest.raises(DataError, match=message):
            read_texts(path)


def test_the_csv_has_every_row_in_order_with_the_classifiers_answers(classifier, tmp_path):
    texts = [f"{'good great' if i % 2 else 'bad awful'} film {i}" for i in range(CHUNK_ROWS + 10)]
    table = TextTable(texts, [f"id{i}" for i in range(len(texts))], "csv", "text")
    seen = []
    out = tmp_path / "out.csv"
    assert classify_table(classifier, table, out, on_progress=lambda d, t: seen.append((d, t))) == len(texts)
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["row", "id", "label", "probability", "p_negative", "p_positive", "truncated", "text"]
    assert seen == [(CHUNK_ROWS, len(texts)), (len(texts), len(texts))]
    expected = classifier.predict(texts)
    assert [r["text"] for r in rows] == texts and [r["id"] for r in rows][-1] == f"id{len(texts) - 1}"
    assert [r["label"] for r in rows] == [p.label for p in expected]
    assert float(rows[3]["p_positive"]) == pytest.approx(expected[3].probabilities["positive"], abs=1e-6)


def test_a_cancel_stops_between_chunks(classifier, tmp_path):
    table = TextTable(["good"] * (CHUNK_ROWS + 1), None, "csv", "text")
    calls = []
    with pytest.raises(Cancelled):
        classify_table(classifier, table, tmp_path / "o.csv", should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert len(calls) == 2


def test_a_summary_counts_every_rows_label_and_keeps_the_first_rows(classifier, tmp_path):
    texts = [f"{'good great' if i % 3 else 'bad awful'} film {i}" + " long" * 100 * (i == 1) for i in range(300)]
    table = TextTable(texts, [f"id{i}" for i in range(len(texts))], "csv", "text")
    summary = ResultSummary.for_labels(classifier.label_names + ["never predicted"])
    classify_table(classifier, table, tmp_path / "out.csv", summary=summary)
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    counts = {name: sum(r["label"] == name for r in rows) for name in classifier.label_names}
    assert summary.label_counts == counts | {"never predicted": 0} and sum(counts.values()) == 300
    assert [r["row"] for r in summary.first_rows] == list(range(1, FIRST_ROWS + 1))
    assert [(r["id"], r["label"]) for r in summary.first_rows] == [(r["id"], r["label"]) for r in rows[:FIRST_ROWS]]
    assert summary.first_rows[0]["probability"] == pytest.approx(float(rows[0]["probability"]), abs=1e-4)
    assert len(summary.first_rows[1]["text"]) == TEXT_CHARS and summary.first_rows[1]["text"].endswith("…")
    assert summary.first_rows[2]["text"] == texts[2]
