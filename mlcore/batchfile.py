"""Batch file classification: a table of texts in, a CSV with the label and every probability per row out."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcore import csvsafe
from mlcore.callbacks import Cancelled
from mlcore.data import TextTable
from mlcore.inference import Classifier

CHUNK_ROWS = 256  # rows per predict call: progress and cancel checks happen between chunks
FIRST_ROWS = 10  # rows a summary keeps for the job's page
TEXT_CHARS = 300  # of each of those rows' text


@dataclass
class ResultSummary:
    """A file classification at a glance, for its job's page: how many rows got each label (every label of the
    model, 0 included) and the first FIRST_ROWS rows (row, id, label, probability, the text cut to TEXT_CHARS)."""

    label_counts: dict[str, int]
    first_rows: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_labels(cls, label_names: list[str]) -> ResultSummary:
        return cls({name: 0 for name in label_names})

    def add(self, row: int, row_id: str | None, label: str, probability: float, text: str) -> None:
        self.label_counts[label] = self.label_counts.get(label, 0) + 1
        if len(self.first_rows) < FIRST_ROWS:
            cut = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
            self.first_rows.append(
                {"row": row, "id": row_id, "label": label, "probability": round(probability, 4), "text": cut}
            )

    def to_dict(self) -> dict[str, Any]:
        return {"label_counts": self.label_counts, "first_rows": self.first_rows}


def output_columns(table: TextTable, label_names: list[str]) -> list[str]:
    head = ["row"] + (["id"] if table.ids is not None else [])
    return head + ["label", "probability"] + [f"p_{name}" for name in label_names] + ["truncated", "text"]


def classify_table(
    classifier: Classifier,
    table: TextTable,
    out_path: str | os.PathLike[str],
    *,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    summary: ResultSummary | None = None,
) -> int:
    """Classify every text of `table` and write the CSV to out_path; returns the number of rows written.

    Rows keep the input's order; `row` is 1-based as in the upload's error messages. Probabilities are
    written with 6 decimals (never negative, so csvsafe leaves them as they are); an id, label or text that a
    spreadsheet would take for a formula gets a leading single quote (mlcore.csvsafe). Raises Cancelled
    (leaving a partial file) when should_stop() says so. With `summary`, each row is also counted into it.
    """
    total = len(table.texts)
    with Path(out_path).open("w", newline="", encoding="utf-8") as fh:
        writer = csvsafe.writer(fh)  # ids, labels and texts are users' data
        writer.writerow(output_columns(table, classifier.label_names))
        for start in range(0, total, CHUNK_ROWS):
            if should_stop is not None and should_stop():
                raise Cancelled
            texts = table.texts[start : start + CHUNK_ROWS]
            for offset, p in enumerate(classifier.predict(texts, batch_size=32)):
                i = start + offset
                writer.writerow(
                    [i + 1]
                    + ([table.ids[i]] if table.ids is not None else [])
                    + [p.label, f"{p.probability:.6f}"]
                    + [f"{p.probabilities[name]:.6f}" for name in classifier.label_names]
                    + [int(p.truncated), texts[offset]]
                )
                if summary is not None:
                    row_id = table.ids[i] if table.ids is not None else None
                    summary.add(i + 1, row_id, p.label, p.probability, texts[offset])
            if on_progress is not None:
                on_progress(min(start + CHUNK_ROWS, total), total)
    return total
