"""fp32 against int8 on a model's validation rows: the measurement that decides which precision serves it."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from typing import Any

from mlcore.data import TextDataset
from mlcore.inference import Classifier, accuracy


def compare_precisions(
    model_dir: str | os.PathLike[str],
    dataset: TextDataset,
    *,
    max_rows: int = 2000,
    speed_texts: int = 64,
    runtime: str = "torch",
    onnx_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """fp32 vs int8 on `dataset` (validation rows), both on `runtime` (torch or onnx): accuracy of each, the
    drop in points, and the speed-up of int8 at batch 32 on CPU. The row cap keeps this to seconds after a
    training job. ONNX exports go to `onnx_dir` (for the caller to ship, mlcore.onnxrt.ship) or, by default, to
    a temporary folder: never beside the model, whose folder is stored as it is."""
    rows = dataset.subset(range(min(len(dataset), max_rows)))
    result: dict[str, Any] = {"rows": len(rows), "runtime": runtime}
    with contextlib.ExitStack() as stack:
        exports = onnx_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="distillery-onnx-"))
        for precision in ("fp32", "int8"):
            classifier = Classifier.load(
                model_dir, device="cpu", precision=precision, runtime=runtime, onnx_dir=exports
            )
            result[f"{precision}_accuracy"] = accuracy(classifier, rows, chunk=max(len(rows), 1))
            texts = (rows.texts * (speed_texts // max(len(rows), 1) + 1))[:speed_texts] or ["a"] * speed_texts
            classifier.predict(texts[:8])  # warm-up
            start = time.perf_counter()
            classifier.predict(texts, batch_size=32)
            result[f"{precision}_seconds"] = time.perf_counter() - start
    if result["fp32_accuracy"] is not None:
        result["accuracy_drop_points"] = round(100 * (result["fp32_accuracy"] - result["int8_accuracy"]), 4)
    else:
        result["accuracy_drop_points"] = None
    result["speedup"] = result["fp32_seconds"] / max(result["int8_seconds"], 1e-9)
    return result
