"""A dataset's quality report names the exact rows of each finding: exact and near duplicates, the same text under
two labels, markup, empty and very short texts, extreme lengths; and the label balance, on a hand-made table."""

from __future__ import annotations

import csv
import io

from mlcore.data import TextDataset
from mlcore.quality import SHORT_WORDS, TRUNCATION_TOKENS, has_markup, normalise, quality_report, rows_csv

ROWS = [
    ("Great  movie<br />", "pos"),  # 1: markup; near duplicate of 2; 2 words
    ("great movie", "pos"),  # 2
    ("A terrible film, really bad.", "neg"),  # 3: exact duplicate of 4
    ("A terrible film, really bad.", "neg"),  # 4
    ("The plot was fine and the cast was good.", "pos"),  # 5: the same text as 6 under another label
    ("the plot was FINE and the cast was good", "neg"),  # 6
    ("ok", "pos"),  # 7: one word
    ("<p></p>", "neg"),  # 8: markup only, so no words: empty
    ("Loved it &amp; would watch again", "pos"),  # 9: an entity
    ("word " * 300, "pos"),  # 10: 300 words
    ("An ordinary film with a decent story", "neg"),  # 11
    ("Boring, slow and far too long for me", "neg"),  # 12
    ("Fine acting but a weak ending overall", "pos"),  # 13
]


def _report() -> dict:
    return quality_report(TextDataset.from_rows(ROWS))


def test_normalising_drops_markup_entities_case_punctuation_and_extra_spaces():
    assert normalise("Great  movie<br />") == normalise("great movie") == "great movie"
    assert normalise("Loved it &amp; <i>would</i> watch!") == "loved it would watch"
    assert normalise("<p></p>") == ""
    assert has_markup("a<br/>b") and has_markup("Tom &amp; Jerry") and has_markup("x &#39; y")
    assert not has_markup("3 < 4 and 5 > 2") and not has_markup("R&D; fine")


def test_each_finding_names_its_rows():
    findings = _report()["findings"]
    assert findings["exact_duplicates"]["rows"] == [3, 4] and findings["exact_duplicates"]["groups"] == 1
    assert findings["near_duplicates"]["rows"] == [1, 2, 5, 6] and findings["near_duplicates"]["groups"] == 2
    assert findings["near_duplicates"]["group_of"] == {"1": 1, "2": 1, "5": 2, "6": 2}
    assert findings["conflicting_labels"]["rows"] == [5, 6]
    assert findings["conflicting_labels"]["examples"] == [
        {"rows": [5, 6], "labels": ["pos", "neg"], "text": "The plot was fine and the cast was good."}
    ]
    assert findings["markup"]["rows"] == [1, 8, 9]
    assert SHORT_WORDS == 3 and findings["short"]["rows"] == [1, 2, 7, 8] and findings["short"]["empty"] == 1
    # Words: 2 2 5 5 9 9 1 0 5 300 7 8 7; the 99th percentile lies between 9 and 300: 9 + 0.88 * 291 = 265.08.
    assert findings["long"]["percentile_words"] == 265.1 and findings["long"]["rows"] == [10]
    assert TRUNCATION_TOKENS == 128 and findings["truncated"]["rows"] == [10]
    assert {name: f["count"] for name, f in findings.items()} == {
        "exact_duplicates": 2, "near_duplicates": 4, "conflicting_labels": 2, "markup": 3, "short": 4, "long": 1,
        "truncated": 1,
    }  # fmt: skip


def test_examples_carry_row_numbers_and_an_excerpt():
    findings = _report()["findings"]
    assert findings["markup"]["examples"][0] == {"row": 1, "label": "pos", "text": "Great  movie<br />"}
    long = findings["long"]["examples"][0]
    assert long["row"] == 10 and len(long["text"]) == 200 and long["text"].endswith("…")


def test_the_label_balance_is_the_largest_class_over_the_smallest():
    imbalance = _report()["imbalance"]
    assert imbalance == {"label_counts": {"neg": 6, "pos": 7}, "majority": "pos", "majority_share": 0.5385,
                         "ratio": 1.17}  # fmt: skip


def test_a_clean_table_has_no_findings():
    rows = [(f"review number {w} of the film", "ab"[i % 2]) for i, w in enumerate("one two three four".split())]
    findings = quality_report(TextDataset.from_rows(rows))["findings"]
    assert {name: f["rows"] for name, f in findings.items()} == dict.fromkeys(findings, [])


def test_a_findings_csv_lists_its_rows_with_their_group_and_neutralised_cells():
    data = TextDataset.from_rows([*ROWS, ("=Great movie", "neg")])
    report = quality_report(data)["findings"]["near_duplicates"]
    assert report["rows"] == [1, 2, 5, 6, 14]
    body = rows_csv(data, report["rows"], {"group": report["group_of"]})
    lines = list(csv.reader(io.StringIO(body)))
    assert lines[0] == ["row", "label", "group", "words", "text"]
    assert [line[:4] for line in lines[1:]] == [
        ["1", "pos", "1", "2"], ["2", "pos", "1", "2"], ["5", "pos", "2", "9"], ["6", "neg", "2", "9"],
        ["14", "neg", "1", "2"],
    ]  # fmt: skip
    assert lines[-1][4] == "'=Great movie"  # a spreadsheet shows it, never runs it
