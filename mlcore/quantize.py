"""int8 dynamic quantisation for CPU serving, and the measurement that decides whether to use it."""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import time
import warnings
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from mlcore.data import TextDataset


def quantize_dynamic_int8(model: PreTrainedModel) -> PreTrainedModel:
    """A copy of `model` whose nn.Linear layers run in int8 (weights quantised once per output channel,
    activations per batch).

    Embeddings and LayerNorm stay fp32; on a BERT-family encoder almost all the FLOPs are in the linears.
    torch marks torch.ao.quantization deprecated in favour of torchao, whose int8 path targets GPUs and
    torch.compile; on CPU eager inference this is still the fast, supported kernel (fbgemm/onednn).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao|mlcore")
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*", category=UserWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig

        # Per output channel scales: on the IMDB student, per-tensor int8 lost 0.9 accuracy points, per-channel 0.4.
        spec = {nn.Linear: per_channel_dynamic_qconfig}
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), spec, dtype=torch.qint8)


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
    from mlcore.inference import Classifier, accuracy

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
