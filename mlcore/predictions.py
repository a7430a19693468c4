"""Per-row test predictions: for each test row, where it sits in its dataset, its text, its true label, the
predicted label, every class's probability and whether it was cut at max_length. The error and disagreement
browsers read them; the confusion matrix of the same pass counts them, so its cells and the rows agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mlcore.inference import Classifier

DECIMALS = 6  # a stored probability's; enough to order rows and to compare with a classify answer


def row_predictions(
    positions: Sequence[int],
    texts: Sequence[str],
    labels: Sequence[int],
    probabilities: Sequence[Sequence[float]],
    predicted: Sequence[int],
    truncated: Sequence[bool],
) -> list[dict[str, Any]]:
    """One dict per row: row (its position in the dataset file), text, label and predicted (label ids),
    probabilities (one per label, in label order) and truncated."""
    columns = (positions, texts, labels, probabilities, predicted, truncated)
    if len({len(c) for c in columns}) != 1:
        raise ValueError("every column needs one value per row")
    return [
        {
            "row": int(row),
            "text": text,
            "label": int(label),
            "predicted": int(best),
            "probabilities": [round(float(p), DECIMALS) for p in probs],
            "truncated": bool(cut),
        }  # fmt: skip
        for row, text, label, probs, best, cut in zip(*columns, strict=True)
    ]


def in_row_order(
    loader: torch.utils.data.DataLoader, logits: torch.Tensor, temperature: float | None = None
) -> tuple[list[list[float]], list[int]]:
    """Each row's served probabilities (softmax of logits / temperature) and predicted label, in the split's own
    row order, from logits in the evaluation loader's order (it runs shortest rows first; its sampler says which
    row each place holds)."""
    order = list(loader.sampler)
    if len(order) != len(logits):
        raise ValueError(f"{len(logits)} rows of logits for a loader of {len(order)}")
    probs = (logits / (temperature or 1.0)).softmax(dim=-1).tolist()
    best = logits.argmax(dim=-1).tolist()
    by_row: list[list[float]] = [[]] * len(order)
    predicted = [0] * len(order)
    for place, row in enumerate(order):
        by_row[row], predicted[row] = probs[place], best[place]
    return by_row, predicted


def classify_rows(
    classifier: Classifier, positions: Sequence[int], texts: Sequence[str], labels: Sequence[int]
) -> list[dict[str, Any]]:
    """row_predictions for rows a saved model classifies now, as classify answers them (for a model stored
    before its test rows were kept). Label ids index the classifier's label_names."""
    answers = classifier.predict(list(texts)) if texts else []
    index = {name: i for i, name in enumerate(classifier.label_names)}
    return row_predictions(
        positions, texts, labels, [list(a.probabilities.values()) for a in answers],
        [index[a.label] for a in answers], [a.truncated for a in answers],
    )  # fmt: skip
