"""A given test set replaces the held-out test split: the training data is split into train and valid only."""

from __future__ import annotations

import pytest

from mlcore.config import DistillConfig, TrainConfig
from mlcore.data import DataError, TextDataset
from mlcore.distill import distill
from mlcore.testing import RecordingCallback, sentiment_rows
from mlcore.train import finetune

from .conftest import TINY_TRAINING

ONE_EPOCH = {**TINY_TRAINING, "epochs": 1}


@pytest.fixture(scope="module")
def official_test():
    # Sorted by label, as IMDB's test folder is read: all negatives first.
    rows = sorted(sentiment_rows(60, seed=77), key=lambda row: row[1])
    return TextDataset.from_rows(rows)


def test_the_test_split_is_the_given_set_and_training_keeps_the_rows_test_fraction_would_have_taken(
    tiny_bert, sentiment, official_test, tmp_path
):
    callback = RecordingCallback()
    result = finetune(
        sentiment, str(tiny_bert), tmp_path / "out", TrainConfig(**ONE_EPOCH), callback, test_dataset=official_test
    )
    assert {k: callback.info[k] for k in ("train_rows", "valid_rows", "test_rows")} == {
        "train_rows": 144, "valid_rows": 16, "test_rows": 60,
    }  # fmt: skip
    report = result.metrics["test/report"]
    assert sum(map(sum, report["confusion_matrix"])) == 60
    assert report["per_class"]["negative"]["support"] == report["per_class"]["positive"]["support"] == 30


def test_labels_are_matched_by_name_onto_the_training_order(tiny_bert, sentiment, tmp_path):
    only_positive = TextDataset.from_rows([(t, "positive") for t, _ in sentiment_rows(10, seed=5)])
    assert only_positive.label_names == ["positive"]  # id 0 here, id 1 in training
    result = finetune(sentiment, str(tiny_bert), tmp_path / "out", TrainConfig(**ONE_EPOCH), test_dataset=only_positive)
    per_class = result.metrics["test/report"]["per_class"]
    assert per_class["positive"]["support"] == 10 and per_class["negative"]["support"] == 0


def test_a_cap_takes_a_stratified_sample_of_a_label_sorted_test_set(tiny_bert, sentiment, official_test, tmp_path):
    config = TrainConfig(**ONE_EPOCH, max_eval_samples=10)
    result = finetune(sentiment, str(tiny_bert), tmp_path / "out", config, test_dataset=official_test)
    per_class = result.metrics["test/report"]["per_class"]
    assert per_class["negative"]["support"] == per_class["positive"]["support"] == 5


def test_a_test_set_with_a_label_the_training_data_lacks_is_refused(tiny_bert, sentiment, tmp_path):
    odd = TextDataset.from_rows([("fine", "neutral"), ("good", "positive")])
    with pytest.raises(DataError, match=r"the test set has labels the training data does not have: 'neutral'"):
        finetune(sentiment, str(tiny_bert), tmp_path / "out", TrainConfig(**ONE_EPOCH), test_dataset=odd)


def test_distillation_scores_student_and_teacher_on_the_given_set(finetuned, sentiment, official_test, tmp_path):
    callback = RecordingCallback()
    config = DistillConfig(**ONE_EPOCH)
    result = distill(
        sentiment, finetuned.result.output_dir, tmp_path / "out", config, callback, test_dataset=official_test
    )
    assert callback.info["test_rows"] == 60 and callback.info["train_rows"] == 144
    assert "teacher/test/accuracy" in result.metrics
    assert sum(map(sum, result.metrics["test/report"]["confusion_matrix"])) == 60
