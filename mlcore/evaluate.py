"""Scoring a classifier: the classification report, one pass of a model over a split, and its CPU speed."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from mlcore.batching import Batch
from mlcore.callbacks import Cancelled
from mlcore.devices import autocast, autocast_dtype, to_device
from mlcore.inference import Classifier

# The precision a trained model is scored in (its test split, its calibration): fp32 without autocast, as it is
# served (its weights are fp32 whatever precision it trained in), so that the test figures and the stored test
# rows' predictions are the model's classify answers. Validation during training uses the training precision.
SCORING_PRECISION = "fp32"


def classification_report(y_true: list[int], y_pred: list[int], label_names: list[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, macro F1 and the confusion matrix (rows = true).

    macro_f1 averages over the classes that occur in y_true or y_pred (as scikit-learn does by default), so a
    class absent from a small test split does not count as an F1 of zero.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if not y_true:
        raise ValueError("no rows to evaluate")
    k = len(label_names)
    matrix = [[0] * k for _ in range(k)]
    for t, p in zip(y_true, y_pred, strict=True):
        matrix[t][p] += 1

    per_class: dict[str, dict[str, float]] = {}
    for i, name in enumerate(label_names):
        tp = matrix[i][i]
        predicted = sum(matrix[r][i] for r in range(k))
        support = sum(matrix[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}

    present = sorted(set(y_true) | set(y_pred))
    return {
        "accuracy": sum(matrix[i][i] for i in range(k)) / len(y_true),
        "per_class": per_class,
        "macro_f1": sum(per_class[label_names[i]]["f1"] for i in present) / len(present),
        "confusion_matrix": matrix,
    }


def evaluate(
    model: torch.nn.Module,
    batches: Iterable[Batch],
    device: torch.device,
    *,
    inputs_key: str = "inputs",
    should_stop: Callable[[], bool] = lambda: False,
    precision: str = "fp32",
) -> tuple[float, list[int], list[int]]:
    """Mean cross-entropy, true labels and predicted labels of `model` over `batches`, in batch order.

    inputs_key picks the encodings to feed: a teacher with its own tokenizer reads "teacher_inputs".
    precision is the training config's, so that a model is validated in the precision it trains in.
    """
    total_loss, y_true, y_pred = 0.0, [], []
    for batch, logits in inference_pass(model, batches, device, inputs_key, should_stop, precision):
        loss = F.cross_entropy(logits, batch["labels"], reduction="sum")
        y_pred += logits.argmax(dim=-1).tolist()  # waits for the device; the rest is ready by then
        y_true += batch["labels"].tolist()
        total_loss += loss.item()
    return total_loss / max(len(y_true), 1), y_true, y_pred


def logits_by_row(
    model: torch.nn.Module,
    batches: Iterable[Batch],
    rows: int,
    device: torch.device,
    *,
    inputs_key: str = "inputs",
    should_stop: Callable[[], bool] = lambda: False,
    precision: str = "fp32",
) -> torch.Tensor:
    """The model's fp32 logits for `rows` rows, on `device`: row i's at position i, placed by each batch's
    "index" (training batches carry one). Nothing is copied back to the host."""
    table: torch.Tensor | None = None
    for batch, logits in inference_pass(model, batches, device, inputs_key, should_stop, precision):
        if table is None:
            table = logits.new_zeros(rows, logits.shape[-1])
        table[batch["index"]] = logits
    if table is None:
        raise ValueError("no rows to compute logits for")
    return table


@torch.inference_mode()
def inference_pass(
    model: torch.nn.Module,
    batches: Iterable[Batch],
    device: torch.device,
    inputs_key: str,
    should_stop: Callable[[], bool],
    precision: str,
) -> Iterator[tuple[Batch, torch.Tensor]]:
    """Each batch, moved to `device`, with the model's fp32 logits for it: in eval mode, in inference mode,
    under the precision's autocast; should_stop is polled before every batch."""
    amp = autocast_dtype(device, precision)
    was_training = model.training
    model.eval()
    try:
        for done, batch in enumerate(batches):
            if should_stop():
                raise Cancelled(f"cancelled after {done} of its batches in an inference pass")
            batch = to_device(batch, device)
            with autocast(device, amp):
                logits = model(**batch[inputs_key]).logits.float()
            yield batch, logits
    finally:
        model.train(was_training)


def split_logits(
    model: torch.nn.Module,
    batches: Iterable[Batch],
    device: torch.device,
    *,
    inputs_key: str = "inputs",
    should_stop: Callable[[], bool] = lambda: False,
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's fp32 logits (rows x labels) and the true labels over `batches`, in batch order, on the CPU:
    what scoring, calibration and agreement with another model all read, from one pass."""
    logits, labels = [], []
    for batch, out in inference_pass(model, batches, device, inputs_key, should_stop, precision):
        logits.append(out.cpu())
        labels.append(batch["labels"].cpu())
    if not logits:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(labels)


def score_logits(logits: torch.Tensor, labels: torch.Tensor, label_names: list[str], prefix: str) -> dict[str, Any]:
    """Flat metrics of one split's logits: "<prefix>/loss" (mean cross-entropy), "/accuracy", "/macro_f1" and
    "/report" (the full report)."""
    loss = F.cross_entropy(logits, labels, reduction="sum").item() / max(len(labels), 1)
    report = classification_report(labels.tolist(), logits.argmax(dim=-1).tolist(), label_names)
    return {
        f"{prefix}/loss": loss,
        f"{prefix}/accuracy": report["accuracy"],
        f"{prefix}/macro_f1": report["macro_f1"],
        f"{prefix}/report": report,
    }


def agreement(logits: torch.Tensor, other: torch.Tensor) -> float:
    """The share of rows whose top class is the same in both (one model's logits and another's on the same rows,
    in the same order)."""
    if logits.shape[0] != other.shape[0] or not len(logits):
        raise ValueError(f"need the same rows from both models, got {logits.shape[0]} and {other.shape[0]}")
    return (logits.argmax(dim=-1) == other.argmax(dim=-1)).double().mean().item()


def score_split(
    model: torch.nn.Module,
    batches: Iterable[Batch],
    label_names: list[str],
    device: torch.device,
    *,
    prefix: str = "test",
    inputs_key: str = "inputs",
    should_stop: Callable[[], bool] = lambda: False,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Flat metrics for one split: "<prefix>/loss", "/accuracy", "/macro_f1" and "/report" (the full report)."""
    logits, labels = split_logits(
        model, batches, device, inputs_key=inputs_key, should_stop=should_stop, precision=precision
    )
    return score_logits(logits, labels, label_names, prefix)


def measure_cpu_speed(
    model_dir: str | os.PathLike[str],
    texts: list[str],
    *,
    batch_sizes: Sequence[int] = (1, 32),
    repeats: int = 20,  # timed requests per batch size, at most
    max_seconds: float = 10.0,  # wall-clock budget for all batch sizes together, warm-ups included
) -> dict[str, float]:
    """How fast the saved model classifies on CPU, measured the way it serves: Classifier.predict, with
    tokenisation, on this process's torch threads.

    For each batch size b: one warm-up request (first calls allocate and pick kernels), then up to `repeats`
    requests of b texts (taken from `texts` in turn), stopping early once that batch size's share of
    max_seconds is spent, so a slow model costs time, not accuracy of the bound.

    Returns "cpu/latency_ms_b{b}" (median milliseconds per request), "cpu/samples_per_s_b{b}" (texts per
    second over the timed requests) for each b, and "cpu/threads".
    """
    if not texts:
        raise ValueError("give at least one text to time")
    if not batch_sizes or min(batch_sizes) < 1 or repeats < 1 or max_seconds <= 0:
        raise ValueError("batch_sizes must be at least 1, repeats at least 1 and max_seconds above 0")
    classifier = Classifier.load(model_dir, device="cpu")
    share = max_seconds / len(batch_sizes)
    results: dict[str, float] = {}
    for b in batch_sizes:
        requests = [[texts[(r * b + j) % len(texts)] for j in range(b)] for r in range(repeats)]
        began = time.perf_counter()
        classifier.predict(requests[0], batch_size=b)
        timings: list[float] = []
        for request in requests:
            start = time.perf_counter()
            classifier.predict(request, batch_size=b)
            timings.append(time.perf_counter() - start)
            if time.perf_counter() - began >= share:
                break
        results[f"cpu/latency_ms_b{b}"] = statistics.median(timings) * 1000
        results[f"cpu/samples_per_s_b{b}"] = b * len(timings) / sum(timings)
    results["cpu/threads"] = torch.get_num_threads()
    return results
