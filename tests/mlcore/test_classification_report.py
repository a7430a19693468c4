"""classification_report computes accuracy, per-class precision/recall/F1, macro F1 and the confusion matrix."""

from __future__ import annotations

import pytest

from mlcore.evaluate import classification_report


def test_a_hand_made_example():
    report = classification_report([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert report["per_class"]["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert report["per_class"]["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_a_class_never_seen_nor_predicted_scores_zero_but_leaves_macro_f1_alone():
    report = classification_report([0, 1], [0, 1], ["a", "b", "unused"])
    assert report["per_class"]["unused"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["macro_f1"] == 1.0
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_a_class_that_is_never_predicted_has_zero_precision_and_counts_in_macro_f1():
    report = classification_report([0, 1, 1], [0, 0, 0], ["a", "b"])
    assert report["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert report["per_class"]["a"]["f1"] == pytest.approx(0.5)
    assert report["macro_f1"] == pytest.approx(0.25)


def test_mismatched_or_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        classification_report([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="no rows"):
        classification_report([], [], ["a", "b"])
