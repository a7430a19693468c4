"""The rule that picks the precision a new model serves at: int8 only when the quantised model measured faster
than fp32 and lost at most DISTILLERY_INT8_MAX_DROP validation accuracy points; fp32 for anything else,
including a missing or failed measurement."""

from __future__ import annotations

import pytest

from jobs.models import ModelRecord
from jobs.registry.precision import serving_precision_for

INT8, FP32 = ModelRecord.Precision.INT8, ModelRecord.Precision.FP32


def _measured(drop, speedup) -> dict:
    """Metrics as register_model gets them, with an int8 report from mlcore.precisions.compare_precisions."""
    return {
        "test/accuracy": 0.9,
        "int8": {"rows": 40, "runtime": "torch", "fp32_accuracy": 0.9, "int8_accuracy": 0.9,
                 "accuracy_drop_points": drop, "speedup": speedup},
    }


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        pytest.param({"test/accuracy": 0.9}, FP32, id="no int8 report"),
        pytest.param({"int8": {}}, FP32, id="an empty int8 report"),
        pytest.param({"int8": {"error": "RuntimeError: cannot quantise"}}, FP32, id="a failed measurement"),
        pytest.param(_measured(None, 2.0), FP32, id="no accuracy to compare (no rows)"),
        pytest.param(_measured(0.1, 1.8), INT8, id="a small drop and faster"),
        pytest.param(_measured(0.5, 1.8), INT8, id="a drop exactly at the limit"),
        pytest.param(_measured(0.5001, 1.8), FP32, id="a drop just over the limit"),
        pytest.param(_measured(3.0, 4.0), FP32, id="a large drop however fast"),
        pytest.param(_measured(-1.25, 1.3), INT8, id="int8 more accurate than fp32"),
        pytest.param(_measured(0.0, 1.0), FP32, id="exactly as fast"),
        pytest.param(_measured(0.0, 1.0001), INT8, id="just faster"),
        pytest.param(_measured(0.0, 0.7), FP32, id="slower"),
        pytest.param({"int8": {"accuracy_drop_points": 0.0}}, FP32, id="no speed measured"),
    ],
)
def test_a_model_serves_int8_only_when_it_measured_faster_and_lost_at_most_the_limit(settings, metrics, expected):
    settings.DISTILLERY_INT8_MAX_DROP = 0.5  # the default, pinned so the rows' edges mean what they say
    assert serving_precision_for(metrics) == expected


@pytest.mark.parametrize(
    ("limit", "drop", "expected"),
    [
        pytest.param(0.5, 2.0, FP32, id="over the default limit"),
        pytest.param(2.0, 2.0, INT8, id="at a raised limit"),
        pytest.param(0.0, 0.0, INT8, id="no loss at a zero limit"),
        pytest.param(0.0, 0.01, FP32, id="any loss at a zero limit"),
    ],
)
def test_the_limit_is_read_from_the_setting_at_each_call(settings, limit, drop, expected):
    settings.DISTILLERY_INT8_MAX_DROP = limit
    assert serving_precision_for(_measured(drop, 1.5)) == expected
