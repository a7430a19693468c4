"""Calibration: how far a classifier's confidence is from how often it is right, and one temperature that closes
the gap (Guo et al. 2017, "On Calibration of Modern Neural Networks").

Expected calibration error (ECE): rows go into ECE_BINS equal-width bins by their confidence (top probability),
bin b holding (b/B, (b+1)/B]; ECE = sum over bins of |bin| / n * |accuracy(bin) - mean confidence(bin)|. The
reliability diagram is the same bins' mean confidence, accuracy and count. Temperature scaling divides the
logits by one T > 0 fitted on the validation rows (the NLL minimised by L-BFGS over log T, so T stays positive);
the top class does not change, so neither does accuracy, only how sure the probabilities say the model is.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

ECE_BINS = 15  # equal-width confidence bins, as Guo et al. report ECE
TEMPERATURE_RANGE = (0.05, 20.0)  # a fitted temperature is clamped to this: T below 1 sharpens, above 1 softens


def reliability(probabilities: Tensor, labels: Tensor, bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """One entry per confidence bin, in order: {"low", "high" (its edges), "count" (rows), "confidence" (their
    mean top probability), "accuracy" (their share predicted right)}; confidence and accuracy are None in an
    empty bin. `probabilities` is rows x classes, `labels` the true class ids."""
    probabilities = probabilities.detach().to("cpu", torch.float64)
    labels = labels.detach().to("cpu")
    if probabilities.ndim != 2 or probabilities.shape[0] != labels.shape[0]:
        raise ValueError(f"need rows x classes probabilities and one label per row, got {tuple(probabilities.shape)}")
    confidence, predicted = probabilities.max(dim=-1)
    correct = (predicted == labels).to(torch.float64)
    # Inner edges 1/B .. (B-1)/B: a confidence equal to an edge goes in the bin below it, (low, high].
    edges = torch.arange(1, bins, dtype=torch.float64) / bins
    which = torch.bucketize(confidence, edges, right=False)
    out = []
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        out.append({
            "low": b / bins,
            "high": (b + 1) / bins,
            "count": count,
            "confidence": float(confidence[members].mean()) if count else None,
            "accuracy": float(correct[members].mean()) if count else None,
        })  # fmt: skip
    return out


def expected_calibration_error(probabilities: Tensor, labels: Tensor, bins: int = ECE_BINS) -> float:
    """ECE of these probabilities against the true labels (0: confidence matches accuracy in every bin)."""
    return ece_of(reliability(probabilities, labels, bins))


def ece_of(diagram: list[dict[str, Any]]) -> float:
    """The ECE a reliability diagram stands for."""
    rows = sum(b["count"] for b in diagram)
    if not rows:
        raise ValueError("no rows to measure calibration on")
    return sum(b["count"] / rows * abs(b["accuracy"] - b["confidence"]) for b in diagram if b["count"])


def nll(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under softmax(logits / temperature)."""
    return float(F.cross_entropy(logits.detach().to("cpu", torch.float64) / temperature, labels.detach().cpu()))


def fit_temperature(logits: Tensor, labels: Tensor, *, max_iter: int = 100) -> float:
    """The T that minimises the NLL of softmax(logits / T) on these rows (the validation rows), clamped to
    TEMPERATURE_RANGE. Fitted on log T from T = 1, so T stays positive and the search is symmetric in scale."""
    if logits.ndim != 2 or not len(logits) or logits.shape[0] != labels.shape[0]:
        raise ValueError("need rows x classes logits and one label per row to fit a temperature")
    x = logits.detach().to("cpu", torch.float64)
    y = labels.detach().cpu()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    low, high = TEMPERATURE_RANGE
    t = float(log_t.detach().exp())
    return min(max(t, low), high) if math.isfinite(t) else 1.0


def calibration_metrics(logits: Tensor, labels: Tensor, temperature: float | None = None) -> dict[str, Any]:
    """The model's metrics for calibration on these (test) rows: "ece" and "reliability" (the diagram) of the
    probabilities it serves; with a fitted `temperature`, of softmax(logits / temperature), and
    "ece_uncalibrated" of the plain softmax beside them."""
    logits = logits.detach().to("cpu", torch.float64)
    plain = reliability(logits.softmax(dim=-1), labels)
    if temperature is None:
        return {"ece": ece_of(plain), "reliability": plain}
    scaled = reliability((logits / temperature).softmax(dim=-1), labels)
    return {"ece": ece_of(scaled), "ece_uncalibrated": ece_of(plain), "reliability": scaled}
