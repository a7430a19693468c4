"""Suspected label errors in a training set, by confident learning (Northcutt et al., 2021; cleanlab's method).

1. Embed every row with the fine-tuned model's encoder (the last layer's first-token state, which the model's
   classifier head reads), once.
2. Out-of-fold probabilities: a logistic regression (scikit-learn) fitted on the embeddings in FOLDS stratified
   folds, so that each row's probabilities come from a fit that did not see it (the fine-tuned head saw every
   training row and would vouch for its own mistakes).
3. cleanlab.filter.find_label_issues with filter_by="confident_learning": each class's threshold is the mean
   probability its own rows give it (its self-confidence); a row is suspect when its given label's probability
   is below that label's threshold while another class's is at or above its own, ranked by self-confidence
   (the probability of the given label, lowest first).

Runs where training runs (a worker): it imports torch, scikit-learn and cleanlab.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from mlcore.batching import pad
from mlcore.data import TextDataset
from mlcore.encoding import encode
from mlcore.loading import load_trained

FOLDS = 5  # cross-validation folds for the out-of-fold probabilities
EMBED_BATCH = 64  # texts per forward pass when embedding
TEXT_CHARS = 300  # of each suspect's text, as stored for review


def embed(
    model_dir: str | os.PathLike[str], texts: list[str], *, device: torch.device, max_length: int | None = None,
    truncation: str | None = None,
) -> np.ndarray:  # fmt: skip
    """One vector per text (rows in input order): the last hidden layer's state at the first token ([CLS]),
    with the model's own max_length and truncation (distillery.json) unless given."""
    model, tokenizer, _, manifest = load_trained(model_dir)
    model.to(device).eval()
    length = max_length or int(manifest.get("max_length") or 128)
    rows, _ = encode(tokenizer, texts, length, truncation=truncation or manifest.get("truncation") or "head")
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))  # little padding per batch
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(order), EMBED_BATCH):
            chunk = order[start : start + EMBED_BATCH]
            inputs = {k: v.to(device) for k, v in pad([rows[i] for i in chunk], tokenizer.pad_token_id or 0).items()}
            states = model(**inputs, output_hidden_states=True).hidden_states[-1][:, 0].float().cpu().numpy()
            if out is None:
                out = np.zeros((len(rows), states.shape[1]), dtype=np.float32)
            out[chunk] = states
    assert out is not None, "no texts to embed"
    return out


def out_of_fold_probabilities(
    features: np.ndarray, labels: list[int], num_classes: int, *, folds: int = FOLDS, seed: int = 0
) -> np.ndarray:
    """Each row's class probabilities from a logistic regression fitted on the other folds (stratified); the
    features are standardised on each fit's own rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    probabilities = np.zeros((len(y), num_classes))
    for fit_rows, held_rows in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, y):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(features[fit_rows], y[fit_rows])
        classes = model.classes_
        probabilities[np.ix_(held_rows, classes)] = model.predict_proba(features[held_rows])
    return probabilities


def find_suspects(labels: list[int], probabilities: np.ndarray) -> list[int]:
    """Row indices whose given label is probably wrong, most suspect (lowest self-confidence) first."""
    from cleanlab.filter import find_label_issues

    ranked = find_label_issues(
        np.asarray(labels), probabilities, filter_by="confident_learning", return_indices_ranked_by="self_confidence"
    )
    return [int(i) for i in ranked]


def folds_for(labels: list[int]) -> int:
    """FOLDS, or fewer when the smallest class has fewer rows (each fold must see every class); 0 when a class
    has fewer than 2 rows, where no out-of-fold estimate can be made."""
    counts = np.bincount(np.asarray(labels))
    smallest = int(counts[counts > 0].min()) if len(counts) else 0
    return min(FOLDS, smallest) if smallest >= 2 else 0


def label_issues(
    model_dir: str | os.PathLike[str], data: TextDataset, *, device: torch.device, seed: int = 0
) -> dict[str, Any]:
    """The suspected label errors of `data` (rows numbered from 1) under the model in `model_dir`:
    {"summary": {"method", "rows", "folds", "thresholds", "oof_accuracy", "count"}, "suspects": [{"row",
    "text", "given", "suggested", "confidence" (the given label's out-of-fold probability), "suggested_probability"}]}.
    """
    names = data.label_names
    folds = folds_for(data.labels)
    summary: dict[str, Any] = {"method": "confident learning (cleanlab)", "rows": len(data), "folds": folds}
    if not folds or len(set(data.labels)) < 2:
        return {"summary": summary | {"count": 0, "skipped": "a class has fewer than 2 rows"}, "suspects": []}
    features = embed(model_dir, data.texts, device=device)
    probabilities = out_of_fold_probabilities(features, data.labels, len(names), folds=folds, seed=seed)
    given = np.asarray(data.labels)
    self_confidence = probabilities[np.arange(len(given)), given]
    thresholds = {
        names[k]: round(float(self_confidence[given == k].mean()), 4) for k in range(len(names)) if (given == k).any()
    }
    suspects = []
    for i in find_suspects(data.labels, probabilities):
        others = probabilities[i].copy()
        others[given[i]] = -1.0
        best = int(others.argmax())
        suspects.append({
            "row": i + 1, "text": data.texts[i][:TEXT_CHARS], "given": names[given[i]], "suggested": names[best],
            "confidence": round(float(self_confidence[i]), 4), "suggested_probability": round(float(others[best]), 4),
        })  # fmt: skip
    summary |= {
        "thresholds": thresholds, "count": len(suspects),
        "oof_accuracy": round(float((probabilities.argmax(axis=1) == given).mean()), 4),
    }  # fmt: skip
    return {"summary": summary, "suspects": suspects}
