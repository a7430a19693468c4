"""How much a model's test accuracy says: the test set's size, a 95% Wilson interval, the decimals that size
supports, and the majority-class baseline it has to beat; the one summary Compare, the model page and the classify
page show.

Runs in: the web process.
"""

from __future__ import annotations

import math
from typing import Any

from mlcore.stats import supported_decimals, wilson_interval

# What a summary's verdict says about the model against the majority-class baseline.
BELOW, UNCLEAR, ABOVE = "at_or_below_baseline", "not_clearly_above_baseline", "above_baseline"


def test_summary(metrics: Any) -> dict[str, Any] | None:
    """A model's test accuracy with what it rests on, from its metrics ("test/accuracy" and "test/report"), or
    None when it has no test accuracy.

    {"accuracy", "rows" (the test set's size, None when the report is missing), "low", "high" (its 95% Wilson
    interval), "decimals" (what the size supports), "shown", "interval" (both rounded so), "baseline",
    "baseline_label" (the test set's most common label and its share: what always answering it scores),
    "verdict" (BELOW, UNCLEAR or ABOVE) and "warning" (a sentence, empty above the baseline)}."""
    metrics = metrics if isinstance(metrics, dict) else {}
    accuracy = _number(metrics.get("test/accuracy"))
    if accuracy is None:
        return None
    supports = _supports(metrics.get("test/report"))
    rows = sum(supports.values()) if supports else None
    if not rows:
        shown = f"{accuracy:.4f}"
        return {"accuracy": accuracy, "rows": None, "low": None, "high": None, "decimals": 4, "shown": shown,
                "interval": "", "baseline": None, "baseline_label": None, "verdict": None, "warning": ""}  # fmt: skip
    low, high = wilson_interval(accuracy * rows, rows)
    decimals = supported_decimals(low, high)
    label, count = max(supports.items(), key=lambda kv: kv[1])
    baseline = count / rows
    summary = {
        "accuracy": accuracy, "rows": rows, "low": low, "high": high, "decimals": decimals,
        "shown": f"{accuracy:.{decimals}f}", "interval": f"{low:.{decimals}f}–{high:.{decimals}f}",
        "baseline": baseline, "baseline_label": label,
    }  # fmt: skip
    always = f"always answering “{label}” scores {baseline:.{decimals}f} on the same {rows} texts"
    if accuracy <= baseline + 1e-12:
        summary |= {"verdict": BELOW, "warning": f"At or below the majority-class baseline: {always}."}
    elif low <= baseline:
        summary |= {
            "verdict": UNCLEAR,
            "warning": f"Not clearly better than the majority-class baseline: {always}, inside the 95% interval "
            f"of this model's accuracy ({summary['interval']}).",
        }
    else:
        summary |= {"verdict": ABOVE, "warning": ""}
    return summary


def with_test_summaries(records) -> list:
    """The records (a queryset or list), each with `.test` set to its test_summary, for tables that list them."""
    records = list(records)
    for record in records:
        record.test = test_summary(record.metrics)
    return records


def _supports(report: Any) -> dict[str, int]:
    """{label: test rows of that label} from a classification report (mlcore.evaluate), {} when it has none."""
    per_class = report.get("per_class") if isinstance(report, dict) else None
    if not isinstance(per_class, dict):
        return {}
    out = {}
    for label, figures in per_class.items():
        support = figures.get("support") if isinstance(figures, dict) else None
        if isinstance(support, int) and not isinstance(support, bool) and support >= 0:
            out[str(label)] = support
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
