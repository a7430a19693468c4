"""What a model's stored metrics say about trusting its answers: how well its probabilities are calibrated on the
test rows (ECE, the reliability diagram, the temperature it is served at) and, for a distilled model, how often its
top class is its teacher's. Read from what the worker stored (mlcore.calibration, mlcore.distill); nothing here
runs the model. The model page, Compare and the API show the same.

Runs in: the web process.
"""

from __future__ import annotations

import math
from typing import Any

from ..models import ModelRecord

_BIN_NUMBERS = ("low", "high", "confidence", "accuracy")


def calibration(record: ModelRecord) -> dict[str, Any] | None:
    """{"ece", "ece_uncalibrated" (None unless a temperature was fitted), "temperature", "calibrated" (whether one
    was), "reliability": [{"low", "high", "count", "confidence", "accuracy"}, ...]} from the record's test rows, or
    None for a model without them (no test split, or trained before calibration was measured)."""
    metrics = record.metrics if isinstance(record.metrics, dict) else {}
    ece = _number(metrics.get("ece"))
    if ece is None:
        return None
    before = _number(metrics.get("ece_uncalibrated"))
    return {
        "ece": ece,
        "ece_uncalibrated": before,
        "temperature": record.temperature,
        "calibrated": before is not None or record.temperature != 1.0,
        "reliability": _bins(metrics.get("reliability")),
    }


def agreement(record: ModelRecord) -> dict[str, Any] | None:
    """{"val", "test"}: the share of the validation and of the test rows on which a distilled model's top class is
    its teacher's (either None when not measured), or None for a model with neither."""
    metrics = record.metrics if isinstance(record.metrics, dict) else {}
    shares = {"val": _number(metrics.get("val/agreement")), "test": _number(metrics.get("test/agreement"))}
    return shares if any(v is not None for v in shares.values()) else None


def _bins(diagram: Any) -> list[dict[str, Any]]:
    """The reliability diagram's bins with what a chart needs, a malformed one left out (an imported model's
    metrics were checked on import, but a record's JSON may hold anything)."""
    if not isinstance(diagram, list):
        return []
    out = []
    for entry in diagram:
        if not isinstance(entry, dict) or not isinstance(entry.get("count"), int) or entry["count"] < 0:
            continue
        values = {key: _number(entry.get(key)) for key in _BIN_NUMBERS}
        if values["low"] is None or values["high"] is None:
            continue
        out.append({**values, "count": entry["count"]})
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value
