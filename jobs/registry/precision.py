"""How a model is served: the runtime that runs its forward pass, and the precision it serves at. The workers
(which measure int8 against fp32 on that runtime after training) and the web process (which serves on it) must
agree on both.

Runs in: the web process and the workers. A leaf: it imports nothing of jobs but the models.
"""

from __future__ import annotations

from django.conf import settings

from ..models import ModelRecord


def serving_runtime() -> str:
    """DISTILLERY_SERVING_RUNTIME, or torch where onnxruntime is not installed."""
    from mlcore import onnxrt  # imports torch: here, not at web start

    return onnxrt.runtime_for(settings.DISTILLERY_SERVING_RUNTIME)


def serving_precision_for(metrics: dict) -> str:
    """int8 when the quantised model measured faster and lost at most DISTILLERY_INT8_MAX_DROP accuracy points
    on the validation rows (metrics from mlcore.precisions.compare_precisions); fp32 otherwise."""
    q = metrics.get("int8") or {}
    if not q or q.get("accuracy_drop_points") is None:
        return ModelRecord.Precision.FP32
    ok = q["accuracy_drop_points"] <= settings.DISTILLERY_INT8_MAX_DROP and q.get("speedup", 0) > 1.0
    return ModelRecord.Precision.INT8 if ok else ModelRecord.Precision.FP32
