"""The promote guard: the rules a model is checked against before it serves, each with its bound (the operator's
DISTILLERY_PROMOTE_* settings), the model's value and a verdict, read from what the workers stored with the model
(its metrics, its serving_speed), so that the page, the API and the promote itself say the same.

Runs in: the web process.

A rule that cannot be judged says why instead of blocking: "not applicable" (the rule is off, or does not concern
this model: a fine-tuned model has no teacher) or "not measured" (the figure it needs was never stored, as the
ECE of a model trained before calibration was measured). Only "failed" blocks a promote, and an override lets
even that through (jobs.registry.history records it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings

from ..models import ModelRecord
from .quality import test_summary

PASSED, FAILED, NOT_APPLICABLE, NOT_MEASURED = "passed", "failed", "not_applicable", "not_measured"
# Where a model's expected calibration error is stored in its metrics (the calibration work names it "ece").
ECE_KEYS = ("ece", "test/ece")
TOLERANCE = 1e-9  # a value equal to its bound (as 0.97 x 1.0 against 0.97) passes despite float rounding


@dataclass(frozen=True)
class Rule:
    """One rule's verdict on one model. `threshold` is the bound the model's `value` is held to (`comparison`:
    ">=" or "<="), in the value's unit; `setting` is the operator's figure it comes from (for the teacher rule
    the share, for the baseline rule the margin), None when the rule is off."""

    name: str
    title: str
    setting: float | None
    threshold: float | None
    comparison: str
    value: float | None
    unit: str
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == FAILED


@dataclass(frozen=True)
class Verdict:
    rules: list[Rule]

    @property
    def failed(self) -> list[Rule]:
        return [rule for rule in self.rules if rule.failed]

    @property
    def passed(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed": [r.name for r in self.failed], "rules": rule_dicts(self.rules)}


def rule_dicts(rules: list[Rule]) -> list[dict[str, Any]]:
    return [asdict(rule) for rule in rules]


def evaluate(record: ModelRecord) -> Verdict:
    """Every rule's verdict on `record`, in the order the page shows them."""
    metrics = record.metrics if isinstance(record.metrics, dict) else {}
    return Verdict([teacher_share(record), baseline_margin(record, metrics), latency(record, metrics),
                    calibration(metrics)])  # fmt: skip


def teacher_share(record: ModelRecord) -> Rule:
    """A distilled model's test accuracy at least DISTILLERY_PROMOTE_MIN_TEACHER_SHARE of its teacher's."""
    share = settings.DISTILLERY_PROMOTE_MIN_TEACHER_SHARE
    rule = {"name": "teacher_share", "setting": share, "comparison": ">=", "unit": "accuracy"}
    rule["title"] = "Accuracy against its teacher" + ("" if share is None else f": at least {share:.0%} of it")
    accuracy = record.test_accuracy
    teacher = record.teacher
    if share is None:
        return _rule(rule, None, accuracy, NOT_APPLICABLE, "Off (DISTILLERY_PROMOTE_MIN_TEACHER_SHARE).")
    if teacher is None:
        why = "It has no teacher." if record.kind != ModelRecord.Kind.DISTILL else "Its teacher was deleted."
        return _rule(rule, None, accuracy, NOT_APPLICABLE, why)
    reference = teacher.test_accuracy
    if reference is None or accuracy is None:
        whose = "its teacher" if reference is None else "it"
        return _rule(rule, None, accuracy, NOT_MEASURED, f"No test accuracy stored for {whose}.")
    bound = share * reference
    status = PASSED if accuracy >= bound - TOLERANCE else FAILED
    said = f"{accuracy:.4f} against {share:.2f} x {reference:.4f} ({teacher.name}) = {bound:.4f}."
    return _rule(rule, bound, accuracy, status, said)


def baseline_margin(record: ModelRecord, metrics: dict) -> Rule:
    """Test accuracy at least the majority-class baseline plus DISTILLERY_PROMOTE_BASELINE_MARGIN. The baseline
    is the share of the test rows' commonest label (registry.quality), or the dataset's when the model stored no
    per-class report."""
    margin = settings.DISTILLERY_PROMOTE_BASELINE_MARGIN
    rule = {"name": "baseline_margin", "setting": margin, "comparison": ">=", "unit": "accuracy"}
    rule["title"] = "Above the majority-class baseline" + ("" if margin is None else f" by {margin:g}")
    accuracy = record.test_accuracy
    if margin is None:
        return _rule(rule, None, accuracy, NOT_APPLICABLE, "Off (DISTILLERY_PROMOTE_BASELINE_MARGIN).")
    summary = test_summary(metrics) or {}
    baseline, label, where = summary.get("baseline"), summary.get("baseline_label"), "test rows"
    if baseline is None:
        baseline, label, where = _dataset_baseline(record)
    if accuracy is None or baseline is None:
        missing = "test accuracy" if accuracy is None else "label counts to take a baseline from"
        return _rule(rule, None, accuracy, NOT_MEASURED, f"No {missing} stored.")
    bound = baseline + margin
    status = PASSED if accuracy >= bound - TOLERANCE else FAILED
    said = f"{accuracy:.4f} against {baseline:.4f} (always “{label}”, on the {where}) + {margin:g} = {bound:.4f}."
    return _rule(rule, bound, accuracy, status, said)


def latency(record: ModelRecord, metrics: dict) -> Rule:
    """CPU latency of one text at most DISTILLERY_PROMOTE_MAX_LATENCY_MS: as Compare's re-measure found it where
    the model serves, at the precision it serves, else as the worker measured it after training."""
    budget = settings.DISTILLERY_PROMOTE_MAX_LATENCY_MS
    rule = {"name": "latency", "setting": budget, "threshold": budget, "comparison": "<=", "unit": "ms"}
    rule["title"] = "CPU latency of one text" + ("" if budget is None else f" at most {budget:g} ms")
    value, source = _latency(record, metrics)
    if budget is None:
        return _rule(rule, None, value, NOT_APPLICABLE, "No budget set (DISTILLERY_PROMOTE_MAX_LATENCY_MS).")
    if value is None:
        return _rule(rule, budget, None, NOT_MEASURED, "No CPU latency stored.")
    status = PASSED if value <= budget + TOLERANCE else FAILED
    return _rule(rule, budget, value, status, f"{value:.1f} ms ({source}) against {budget:g} ms.")


def calibration(metrics: dict) -> Rule:
    """Expected calibration error on the test rows at most DISTILLERY_PROMOTE_MAX_ECE."""
    bound = settings.DISTILLERY_PROMOTE_MAX_ECE
    rule = {"name": "calibration", "setting": bound, "threshold": bound, "comparison": "<=", "unit": "ECE"}
    rule["title"] = "Calibration error (ECE)" + ("" if bound is None else f" at most {bound:g}")
    value = next((v for v in map(_number, (metrics.get(k) for k in ECE_KEYS)) if v is not None), None)
    if bound is None:
        return _rule(rule, None, value, NOT_APPLICABLE, "Off (DISTILLERY_PROMOTE_MAX_ECE).")
    if value is None:
        return _rule(rule, bound, None, NOT_MEASURED, "Not measured for this model; it does not block.")
    status = PASSED if value <= bound + TOLERANCE else FAILED
    return _rule(rule, bound, value, status, f"{value:.4f} against {bound:g}.")


def _rule(fields: dict, threshold: float | None, value: float | None, status: str, detail: str) -> Rule:
    return Rule(**({"threshold": threshold} | fields), value=value, status=status, detail=detail)


def _dataset_baseline(record: ModelRecord) -> tuple[float | None, str | None, str]:
    counts = record.dataset.label_counts if record.dataset else None
    if not isinstance(counts, dict):
        return None, None, ""
    counts = {str(k): v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}
    total = sum(counts.values())
    if not total:
        return None, None, ""
    label, count = max(counts.items(), key=lambda kv: kv[1])
    return count / total, label, "dataset's rows"


def _latency(record: ModelRecord, metrics: dict) -> tuple[float | None, str]:
    serving = record.serving_speed if isinstance(record.serving_speed, dict) else {}
    figures = serving.get(record.serving_precision)
    served = _number(figures.get("latency_ms_b1")) if isinstance(figures, dict) else None
    if served is not None:
        return served, f"{record.serving_precision}, re-measured where it serves"
    return _number(metrics.get("cpu/latency_ms_b1")), "measured by the worker after training"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past a double's range
        return None
    return number if math.isfinite(number) else None
