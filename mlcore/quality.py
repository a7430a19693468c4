"""A labelled dataset's quality report: duplicates, near duplicates, the same text under different labels, markup,
empty and very short texts, extreme lengths and label imbalance, each with its rows.

Pure Python (no torch, no Django): the worker computes the report once per dataset, and the web side's helper
processes write a finding's rows as CSV. Rows are numbered from 1 in the dataset's order, as the preview lists
them (for a file without blank lines, its line after the header; a JSONL file's line).

Near duplicates are found by hashing each text's normal form (`normalise`: markup and entities removed,
lowercased, punctuation dropped, whitespace collapsed): two rows are near duplicates when their normal forms are
equal and their texts are not. Exact and deterministic, with no threshold to tune; it does not catch a reworded
copy (MinHash would), which is the price of naming every pair for certain.
"""

from __future__ import annotations

import html
import html.entities
import io
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from mlcore import csvsafe
from mlcore.config import TrainConfig
from mlcore.data import TextDataset

SHORT_WORDS = 3  # a text with fewer words than this (after normalising) is "very short"; 0 words is "empty"
LONG_PERCENTILE = 99  # a text with more words than this percentile of the dataset's word counts is "long"
# Words stand in for tokens: a word is at least one token, so a text with more words than the default max_length
# (in tokens) is certainly cut by a job that keeps the default; a text with fewer may be cut too.
TRUNCATION_TOKENS = TrainConfig.max_length
EXAMPLES = 5  # example rows (or groups) kept per finding for the page
EXCERPT_CHARS = 200  # characters of an example's text

# Findings with rows, in the order the page lists them.
FINDINGS = {
    "exact_duplicates": "Exact duplicates",
    "near_duplicates": "Near duplicates",
    "conflicting_labels": "Same text, different labels",
    "markup": "Markup",
    "short": f"Empty or very short (under {SHORT_WORDS} words)",
    "long": f"Longer than the {LONG_PERCENTILE}th percentile",
    "truncated": f"More than {TRUNCATION_TOKENS} words (cut at the default max_length)",
}

_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>")
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")  # names checked in has_markup
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The text's normal form: tags removed (each a space), entities decoded, lowercased, punctuation and
    symbols dropped, whitespace collapsed. "Great  movie<br />" and "great movie!" are both "great movie"."""
    text = html.unescape(_TAG.sub(" ", text)).casefold()
    kept = "".join(" " if unicodedata.category(c)[0] in "PSZC" else c for c in text)
    return _SPACE.sub(" ", kept).strip()


def has_markup(text: str) -> bool:
    """Whether the text holds an HTML tag (<br />, <i>, </p>) or an HTML entity (&amp;, &#39;; a name HTML does
    not define, as in "R&D;", is not one)."""
    if _TAG.search(text):
        return True
    return any(m[1] == "#" or m[1:] in html.entities.html5 for m in _ENTITY.findall(text))


def quality_report(data: TextDataset) -> dict[str, Any]:
    """The report: {"rows", "definitions", "findings": {name: finding}, "imbalance"}.

    A finding is {"title", "count" (rows affected), "rows" (all of them, ascending), "examples"}; a grouped one
    (duplicates, near duplicates, conflicting labels) also has "groups" (how many) and "group_of" ({row: group
    number}); its examples are groups: {"rows", "labels", "text"}, the others' rows: {"row", "label", "text"}."""
    names = data.label_names
    normal = [normalise(t) for t in data.texts]
    words = [len(n.split()) for n in normal]

    by_text: dict[str, list[int]] = defaultdict(list)
    by_normal: dict[str, list[int]] = defaultdict(list)
    for i, (text, norm) in enumerate(zip(data.texts, normal, strict=True)):
        by_text[text].append(i)
        if norm:  # texts with no words are reported as empty, not as copies of each other
            by_normal[norm].append(i)
    exact = [rows for rows in by_text.values() if len(rows) > 1]
    near = [rows for rows in by_normal.values() if len({data.texts[i] for i in rows}) > 1]
    conflicting = [rows for rows in by_normal.values() if len({data.labels[i] for i in rows}) > 1]

    cut = _percentile(words, LONG_PERCENTILE)
    findings = {
        "exact_duplicates": _grouped(data, exact),
        "near_duplicates": _grouped(data, near),
        "conflicting_labels": _grouped(data, conflicting),
        "markup": _single(data, [i for i, t in enumerate(data.texts) if has_markup(t)]),
        "short": _single(data, [i for i, n in enumerate(words) if n < SHORT_WORDS]),
        "long": _single(data, [i for i, n in enumerate(words) if n > cut]),
        "truncated": _single(data, [i for i, n in enumerate(words) if n > TRUNCATION_TOKENS]),
    }
    for name, finding in findings.items():
        finding["title"] = FINDINGS[name]
    findings["short"]["empty"] = sum(1 for n in words if n == 0)
    findings["long"]["percentile_words"] = round(cut, 1)
    counts = Counter(data.labels)
    label_counts = {name: counts[k] for k, name in enumerate(names)}
    largest, smallest = max(label_counts.values()), min(label_counts.values())
    majority = max(label_counts, key=label_counts.__getitem__)
    return {
        "rows": len(data),
        "definitions": {
            "short_words": SHORT_WORDS, "long_percentile": LONG_PERCENTILE, "truncation_tokens": TRUNCATION_TOKENS,
            "words": "words of the normalised text (markup, punctuation and case removed)",
        },
        "findings": findings,
        "words": {"min": min(words), "median": _percentile(words, 50), "max": max(words)},
        "imbalance": {
            "label_counts": label_counts, "majority": majority, "majority_share": round(largest / len(data), 4),
            "ratio": round(largest / smallest, 2) if smallest else None,
        },
    }  # fmt: skip


def _grouped(data: TextDataset, groups: list[list[int]]) -> dict[str, Any]:
    groups = sorted(groups)  # by their first row
    rows = sorted(i + 1 for group in groups for i in group)
    return {
        "count": len(rows),
        "groups": len(groups),
        "rows": rows,
        "group_of": {str(i + 1): g for g, group in enumerate(groups, 1) for i in group},
        "examples": [
            {
                "rows": [i + 1 for i in group],
                "labels": [data.label_names[data.labels[i]] for i in group],
                "text": _excerpt(data.texts[group[0]]),
            }
            for group in groups[:EXAMPLES]
        ],
    }


def _single(data: TextDataset, indices: list[int]) -> dict[str, Any]:
    return {
        "count": len(indices),
        "rows": [i + 1 for i in indices],
        "examples": [
            {"row": i + 1, "label": data.label_names[data.labels[i]], "text": _excerpt(data.texts[i])}
            for i in indices[:EXAMPLES]
        ],
    }


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _percentile(values: list[int], q: float) -> float:
    """The q-th percentile with linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rows_csv(data: TextDataset, rows: Iterable[int], extra: dict[str, dict[str, Any]] | None = None) -> str:
    """A CSV of the given rows (1-based): row, label, the `extra` columns ({column: {row as str: value}}), words,
    text; cells neutralised against formulas (mlcore.csvsafe)."""
    extra = extra or {}
    out = io.StringIO()
    writer = csvsafe.writer(out, lineterminator="\n")
    writer.writerow(["row", "label", *extra, "words", "text"])
    for row in rows:
        text = data.texts[row - 1]
        values = [column.get(str(row), "") for column in extra.values()]
        writer.writerow([row, data.label_names[data.labels[row - 1]], *values, len(normalise(text).split()), text])
    return out.getvalue()


def table_rows_csv(
    path: str, *, format: str, text_column: str, label_column: str, max_bytes: int | None,  # noqa: A002
    rows: list[int], extra: dict[str, dict[str, Any]] | None = None,
) -> str:  # fmt: skip
    """rows_csv on a stored table (read as read_table reads it), for a helper process: paths in, text out."""
    from mlcore.data import read_table

    data, _ = read_table(path, format=format, text_column=text_column, label_column=label_column, max_bytes=max_bytes)
    return rows_csv(data, rows, extra)
