"""A model's stored test rows (jobs.predictions): kept when a worker tests it, one cell of its confusion matrix
at a time for the error browser, and two models' rows side by side for the disagreement browser.

Runs in: the workers (store_rows) and the web process (the rest: reads of stored rows, no model loaded). Two
models are compared only on the same rows of the same dataset (comparable says why not otherwise).
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from mlcore import csvsafe

from ..models import Dataset, ModelRecord, RowPrediction

# ?order= of the error browser: the most confident predictions first (the default), or the least.
ORDERS = {"confident": ("-confidence", "row"), "unsure": ("confidence", "row")}
DEFAULT_ORDER = "confident"


def store_rows(record: ModelRecord, rows: list[dict], dataset: Dataset | None) -> None:
    """Replace the record's test rows by `rows` (mlcore.predictions.row_predictions, label ids indexing its
    label_names), whose positions point into `dataset`; one transaction, so a page sees the old rows or the new."""
    with transaction.atomic():
        RowPrediction.objects.filter(model=record).delete()
        RowPrediction.objects.bulk_create(
            (
                RowPrediction(
                    model=record, row=r["row"], text=r["text"], label=r["label"], predicted=r["predicted"],
                    confidence=r["probabilities"][r["predicted"]], probabilities=r["probabilities"],
                    truncated=r["truncated"],
                )  # fmt: skip
                for r in rows
            ),
            batch_size=1000,
        )
        record.test_rows_count, record.test_rows_dataset = len(rows), dataset
        record.save(update_fields=["test_rows_count", "test_rows_dataset"])


def label_index(record: ModelRecord, name: str | None, field: str) -> int | None:
    """The index of a label name of the record's (None for none given); a ValidationError on `field` otherwise."""
    if name in (None, ""):
        return None
    try:
        return list(record.label_names).index(name)
    except ValueError:
        raise ValidationError({field: f"not one of the model's labels ({', '.join(record.label_names)})"}) from None


def check_order(order: str | None) -> str:
    if order in (None, ""):
        return DEFAULT_ORDER
    if order not in ORDERS:
        raise ValidationError({"order": f"one of {', '.join(ORDERS)}"})
    return order


def cell_rows(record: ModelRecord, true: str | None, predicted: str | None, order: str | None = None):
    """The record's test rows whose true label is `true` and predicted label `predicted` (label names; either may
    be left out for all), ordered by confidence (ORDERS). Raises ValidationError for an unknown label or order."""
    rows = RowPrediction.objects.filter(model=record)
    t, p = label_index(record, true, "true"), label_index(record, predicted, "predicted")
    if t is not None:
        rows = rows.filter(label=t)
    if p is not None:
        rows = rows.filter(predicted=p)
    return rows.order_by(*ORDERS[check_order(order)])


def row_dict(record: ModelRecord, row: RowPrediction) -> dict:
    """A stored row as the API and the CSV give it: label names, probabilities by label."""
    names = record.label_names
    return {
        "row": row.row, "text": row.text, "true": names[row.label], "predicted": names[row.predicted],
        "confidence": row.confidence, "probabilities": dict(zip(names, row.probabilities, strict=True)),
        "truncated": row.truncated,
    }  # fmt: skip


def csv_text(record: ModelRecord, rows) -> str:
    """Rows as CSV (row, true, predicted, confidence, p_<label> each, truncated 0/1, text), every text cell
    neutralised against formula injection (mlcore.csvsafe): texts are users' data."""
    names = record.label_names
    out = io.StringIO()
    writer = csvsafe.writer(out, lineterminator="\n")
    writer.writerow(["row", "true", "predicted", "confidence", *(f"p_{n}" for n in names), "truncated", "text"])
    for r in rows.iterator(chunk_size=1000):
        line = [r.row, names[r.label], names[r.predicted], r.confidence, *r.probabilities, int(r.truncated), r.text]
        writer.writerow(line)
    return out.getvalue()


def csv_name(record: ModelRecord, true: str | None, predicted: str | None) -> str:
    """A download's file name: the model and the cell, in characters any file system takes."""
    cell = "-".join(part for part in (true and f"true-{true}", predicted and f"predicted-{predicted}") if part)
    name = f"{record.name}-{cell or 'test-rows'}.csv"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def confusion(record: ModelRecord) -> list[list[int]]:
    """Rows per (true, predicted) cell of the stored rows (rows = true), as the model page's matrix reads."""
    k = len(record.label_names)
    matrix = [[0] * k for _ in range(k)]
    for t, p in RowPrediction.objects.filter(model=record).values_list("label", "predicted"):
        matrix[t][p] += 1
    return matrix


# ---------------------------------------------------------------------------------------------- disagreements

# ?order= of the disagreement browser: by either model's confidence, most confident first ("a", "b") or least
# ("a_unsure", "b_unsure").
PAIR_ORDERS = ("a", "b", "a_unsure", "b_unsure")


def comparable(a: ModelRecord, b: ModelRecord) -> None:
    """Raise a ValidationError saying why two models' test rows cannot be set side by side: one has none stored,
    they come from different datasets (or one that is deleted), they are not the same rows, or the two models
    do not have the same labels."""
    if a.pk == b.pk:
        raise ValidationError("choose two different models")
    for record in (a, b):
        if record.test_rows_count is None:
            raise ValidationError(f"{record.name} has no stored test rows: evaluate it on its test rows first")
    if a.test_rows_dataset_id is None or b.test_rows_dataset_id is None:
        raise ValidationError("the dataset their test rows come from is deleted: they cannot be matched row by row")
    if a.test_rows_dataset_id != b.test_rows_dataset_id:
        raise ValidationError(
            f"{a.name} and {b.name} were tested on different datasets (#{a.test_rows_dataset_id} and "
            f"#{b.test_rows_dataset_id}): their test rows are not the same texts"
        )
    if sorted(a.label_names) != sorted(b.label_names):
        raise ValidationError(f"{a.name} and {b.name} do not have the same labels")
    rows_a = set(RowPrediction.objects.filter(model=a).values_list("row", flat=True))
    rows_b = set(RowPrediction.objects.filter(model=b).values_list("row", flat=True))
    if rows_a != rows_b:
        raise ValidationError(
            f"{a.name} and {b.name} were tested on different rows of the dataset ({len(rows_a & rows_b)} in "
            f"common of {len(rows_a)} and {len(rows_b)}): split them with the same seed and fractions"
        )


@dataclass
class Pair:
    """Two comparable models' stored answers, row by row, as label names and confidences."""

    a: ModelRecord
    b: ModelRecord
    answers: dict[int, tuple[str, float, str, float]]  # row -> (a's label, a's confidence, b's label, b's ...)

    @classmethod
    def load(cls, a: ModelRecord, b: ModelRecord) -> Pair:
        comparable(a, b)
        answers_b = {
            row: (b.label_names[p], c)
            for row, p, c in RowPrediction.objects.filter(model=b).values_list("row", "predicted", "confidence")
        }
        answers = {
            row: (a.label_names[p], c, *answers_b[row])
            for row, p, c in RowPrediction.objects.filter(model=a).values_list("row", "predicted", "confidence")
        }
        return cls(a, b, answers)

    @property
    def labels(self) -> list[str]:
        return list(self.a.label_names)

    def table(self) -> list[list[int]]:
        """Rows per (a's label, b's label) cell, in a's label order (rows: a, columns: b)."""
        counts = Counter((la, lb) for la, _, lb, _ in self.answers.values())
        return [[counts[(la, lb)] for lb in self.labels] for la in self.labels]

    def disagreeing(
        self, a_label: str | None = None, b_label: str | None = None, order: str | None = None
    ) -> list[int]:
        """The rows where the two answer differently (of one cell, given a's and b's labels), in `order`."""
        for field, name in (("a_label", a_label), ("b_label", b_label)):
            if name not in (None, "") and name not in self.labels:
                raise ValidationError({field: f"not one of the models' labels ({', '.join(self.labels)})"})
        order = order or "a"
        if order not in PAIR_ORDERS:
            raise ValidationError({"order": f"one of {', '.join(PAIR_ORDERS)}"})
        rows = [
            row
            for row, (la, _, lb, _) in self.answers.items()
            if la != lb and (not a_label or la == a_label) and (not b_label or lb == b_label)
        ]
        place = 1 if order.startswith("a") else 3
        sign = 1 if order.endswith("unsure") else -1
        return sorted(rows, key=lambda row: (sign * self.answers[row][place], row))

    def rows(self, rows: list[int]) -> list[dict]:
        """Those rows as the API gives them: text, true label, and each model's answer and probabilities."""
        stored = {
            (p.model_id, p.row): p for p in RowPrediction.objects.filter(model__in=(self.a, self.b), row__in=rows)
        }
        out = []
        for row in rows:
            pa, pb = stored[(self.a.pk, row)], stored[(self.b.pk, row)]
            da, db = row_dict(self.a, pa), row_dict(self.b, pb)
            out.append(
                {
                    "row": row, "text": pa.text, "true": da["true"], "truncated": pa.truncated or pb.truncated,
                    "a": {k: da[k] for k in ("predicted", "confidence", "probabilities", "truncated")},
                    "b": {k: db[k] for k in ("predicted", "confidence", "probabilities", "truncated")},
                }  # fmt: skip
            )
        return out
