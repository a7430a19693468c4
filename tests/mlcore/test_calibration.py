"""Calibration: the expected calibration error and its reliability diagram, computed as by hand; a temperature
fitted on over-confident logits finds the scale they were inflated by; a calibrated model saves and serves
softmax(logits / T)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mlcore.calibration import (
    ECE_BINS,
    TEMPERATURE_RANGE,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability,
)
from mlcore.config import ConfigError, TrainConfig
from mlcore.inference import Classifier

from .conftest import TINY_TRAINING

# Five rows of two classes: (probabilities, true label). Confidences 0.95 (right), 0.90 (wrong), 0.92 (right),
# 0.70 (right), 0.55 (wrong).
ROWS = [([0.95, 0.05], 0), ([0.90, 0.10], 1), ([0.92, 0.08], 0), ([0.30, 0.70], 1), ([0.55, 0.45], 1)]


def _tensors(rows):
    return torch.tensor([p for p, _ in rows], dtype=torch.float64), torch.tensor([y for _, y in rows])


def test_the_ece_of_hand_made_probabilities_is_the_hand_computed_one():
    probabilities, labels = _tensors(ROWS)
    # Bins of width 1/15: 0.95 in (14/15, 1]; 0.90 and 0.92 in (13/15, 14/15]; 0.70 in (10/15, 11/15];
    # 0.55 in (8/15, 9/15]. Per bin |accuracy - confidence| weighted by its share of the 5 rows:
    by_hand = (1 * abs(1 - 0.95) + 2 * abs(0.5 - 0.91) + 1 * abs(1 - 0.70) + 1 * abs(0 - 0.55)) / 5
    assert by_hand == pytest.approx(0.344)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(by_hand, abs=1e-12)


def test_the_reliability_diagram_has_fifteen_equal_bins_with_each_ones_confidence_accuracy_and_count():
    diagram = reliability(*_tensors(ROWS))
    assert len(diagram) == ECE_BINS == 15
    assert [(b["low"], b["high"]) for b in diagram[:2]] == [(0.0, 1 / 15), (1 / 15, 2 / 15)]
    assert [b["count"] for b in diagram] == [0] * 8 + [1, 0, 1, 0, 0, 2, 1]
    assert diagram[13]["confidence"] == pytest.approx(0.91) and diagram[13]["accuracy"] == 0.5
    assert (diagram[8]["confidence"], diagram[8]["accuracy"]) == (pytest.approx(0.55), 0.0)
    assert diagram[0] == {"low": 0.0, "high": 1 / 15, "count": 0, "confidence": None, "accuracy": None}
    json.dumps(diagram)  # stored as it is in a model's metrics


def test_a_confidence_on_a_bin_edge_goes_in_the_bin_below_it():
    diagram = reliability(torch.tensor([[0.6, 0.4]], dtype=torch.float64), torch.tensor([0]))
    assert diagram[8]["count"] == 1 and (diagram[8]["low"], diagram[8]["high"]) == (8 / 15, 9 / 15)


def test_probabilities_as_sure_as_they_are_right_have_no_calibration_error():
    # 0.8 confident on 10 rows, 8 of them right.
    rows = [([0.8, 0.2], 0)] * 8 + [([0.8, 0.2], 1)] * 2
    assert expected_calibration_error(*_tensors(rows)) == pytest.approx(0.0, abs=1e-12)


def _over_confident(scale: float, rows: int = 20_000, classes: int = 4):
    """Labels drawn from softmax(z) (so z is calibrated), and the logits z * scale a too-sure model would give."""
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(rows, classes, generator=generator, dtype=torch.float64) * 1.5
    labels = torch.multinomial(z.softmax(dim=-1), 1, generator=generator).squeeze(1)
    return z * scale, labels


def test_a_temperature_fitted_on_over_confident_logits_recovers_their_scale_and_lowers_nll_and_ece():
    logits, labels = _over_confident(3.0)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(3.0, rel=0.05)
    assert nll(logits, labels, t) < nll(logits, labels) - 0.1
    before = expected_calibration_error(logits.softmax(dim=-1), labels)
    after = expected_calibration_error((logits / t).softmax(dim=-1), labels)
    assert before > 0.1 and after < 0.03


def test_an_under_confident_model_gets_a_temperature_below_one():
    logits, labels = _over_confident(0.5)
    assert fit_temperature(logits, labels) == pytest.approx(0.5, rel=0.05)


def test_the_fitted_temperature_is_clamped_to_its_range():
    low, high = TEMPERATURE_RANGE
    assert fit_temperature(*_over_confident(0.01, rows=4000)) == low  # its best T is 0.01
    assert fit_temperature(*_over_confident(50.0, rows=4000)) == high  # and here 50


def test_calibration_metrics_report_the_error_before_and_after_with_the_diagram_at_the_temperature():
    logits, labels = _over_confident(3.0, rows=4000)
    plain = calibration_metrics(logits, labels)
    assert set(plain) == {"ece", "reliability"}
    assert plain["ece"] == pytest.approx(expected_calibration_error(logits.softmax(dim=-1), labels))
    calibrated = calibration_metrics(logits, labels, 3.0)
    assert set(calibrated) == {"ece", "ece_uncalibrated", "reliability"}
    assert calibrated["ece_uncalibrated"] == plain["ece"] and calibrated["ece"] < plain["ece"]
    assert calibrated["reliability"] == reliability((logits / 3.0).softmax(dim=-1), labels)


def test_calibrate_is_off_by_default_and_needs_validation_rows():
    assert TrainConfig().calibrate is False
    with pytest.raises(ConfigError, match="calibrate fits its temperature on the validation rows"):
        TrainConfig(calibrate=True, valid_fraction=0.0)


@pytest.fixture(scope="module")
def calibrated(tiny_bert, sentiment, tmp_path_factory):
    from mlcore.train import finetune

    config = TrainConfig(**{**TINY_TRAINING, "epochs": 3}, calibrate=True)
    return finetune(sentiment, str(tiny_bert), tmp_path_factory.mktemp("calibrated") / "model", config)


def test_a_calibrated_fine_tune_reports_its_temperature_and_the_error_before_and_after(calibrated):
    t = calibrated.temperature
    low, high = TEMPERATURE_RANGE
    assert low <= t <= high and t != 1.0
    manifest = json.loads((calibrated.output_dir / "distillery.json").read_text())
    assert manifest["temperature"] == t
    metrics = calibrated.metrics
    assert {"ece", "ece_uncalibrated", "reliability"} <= set(metrics)
    assert sum(b["count"] for b in metrics["reliability"]) == sum(map(sum, metrics["test/report"]["confusion_matrix"]))


def test_a_calibrated_model_serves_softmax_of_its_logits_over_t(calibrated):
    texts = ["great film , loved it", "awful and boring", "the plot was fine"]
    classifier = Classifier.load(calibrated.output_dir)
    assert classifier.temperature == calibrated.temperature
    served = [[p.probabilities[name] for name in classifier.label_names] for p in classifier.predict(texts)]
    # Independently: the saved weights through transformers, one text at a time.
    model = AutoModelForSequenceClassification.from_pretrained(calibrated.output_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(calibrated.output_dir)
    for text, probabilities in zip(texts, served, strict=True):
        with torch.no_grad():
            logits = model(**tokenizer(text, return_tensors="pt")).logits[0].double()
        expected = (logits / calibrated.temperature).softmax(dim=-1).tolist()
        assert probabilities == pytest.approx(expected, abs=1e-5)
        assert not math.isclose(max(expected), max(logits.softmax(dim=-1).tolist()), abs_tol=1e-4)
