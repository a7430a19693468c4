"""distill trains a student from a fine-tuned teacher and records how much of the teacher it retains."""

from __future__ import annotations

import json

import pytest
from transformers import AutoConfig

from mlcore.config import DistillConfig
from mlcore.data import DataError, TextDataset
from mlcore.distill import distill
from mlcore.inference import Classifier
from mlcore.testing import DEFAULT_WORDS, RecordingCallback, make_tiny_bert

from .conftest import TINY_TRAINING


def test_the_derived_student_has_half_the_teachers_layers(distilled, finetuned):
    config = AutoConfig.from_pretrained(distilled.result.output_dir)
    assert config.num_hidden_layers == 2
    assert distilled.result.num_parameters < finetuned.result.num_parameters
    assert distilled.callback.info["teacher_num_parameters"] == finetuned.result.num_parameters


def test_the_manifest_records_the_kind_and_the_teacher(distilled, finetuned):
    manifest = json.loads((distilled.result.output_dir / "distillery.json").read_text())
    assert manifest["kind"] == "distill"
    assert manifest["teacher"] == str(finetuned.result.output_dir)
    assert manifest["label_names"] == ["negative", "positive"]
    assert manifest["config"]["alpha"] == 0.5 and manifest["config"]["temperature"] == 2.0


def test_batches_report_the_soft_and_hard_losses_that_make_up_the_loss(distilled):
    for _, _, metrics in distilled.callback.batches:
        assert set(metrics) - {"system/rss_mb"} == {
            "train/loss", "train/accuracy", "lr", "epoch", "train/samples_per_s", "train/soft_loss", "train/hard_loss",
            "train/agreement",
        }  # fmt: skip
        assert metrics["train/loss"] == pytest.approx(
            0.5 * metrics["train/soft_loss"] + 0.5 * metrics["train/hard_loss"]
        )
    assert len(distilled.callback.batches) == 64


def test_the_teacher_is_scored_on_the_same_test_rows_it_was_held_out_from(distilled, finetuned):
    metrics = distilled.result.metrics
    # Same dataset and seed: the distillation test split is the fine-tuning one, so the scores agree.
    assert metrics["teacher/test/accuracy"] == finetuned.result.metrics["test/accuracy"]
    assert metrics["student/accuracy_retained"] == pytest.approx(
        metrics["test/accuracy"] / metrics["teacher/test/accuracy"]
    )


def test_the_student_learns_and_classifies(distilled):
    assert distilled.result.metrics["test/accuracy"] > 0.8
    predictions = Classifier.load(distilled.result.output_dir).predict(["great film , loved it", "awful and boring"])
    assert [p.label for p in predictions] == ["positive", "negative"]


def test_labels_the_teacher_does_not_know_are_refused(finetuned, tmp_path):
    data = TextDataset.from_rows([("good", "positive"), ("bad", "negative"), ("meh", "neutral")])
    with pytest.raises(DataError, match=r"labels the teacher was not trained on: 'neutral'; the teacher's labels"):
        distill(data, finetuned.result.output_dir, tmp_path / "out", DistillConfig(**TINY_TRAINING))


def test_a_dataset_with_some_of_the_teachers_labels_is_mapped_onto_them_by_name(finetuned, sentiment, tmp_path):
    positive = sentiment.label_names.index("positive")
    only_positive = TextDataset.from_rows(
        [(t, "positive") for t, y in zip(sentiment.texts, sentiment.labels, strict=True) if y == positive]
    )
    assert only_positive.label_names == ["positive"] and only_positive.labels[0] == 0
    config = DistillConfig(**{**TINY_TRAINING, "epochs": 1})
    result = distill(only_positive, finetuned.result.output_dir, tmp_path / "out", config)
    assert result.label_names == ["negative", "positive"]
    # Label id 0 of the dataset is the teacher's id 1: every test row counts as a true "positive".
    assert result.metrics["test/report"]["per_class"]["positive"]["support"] == 8
    assert result.metrics["teacher/test/accuracy"] > 0.8


def test_a_catalogue_student_with_another_vocabulary_gets_its_own_encodings(finetuned, sentiment, tmp_path):
    # Same words in reverse order: every id differs, so feeding the teacher the student's ids would be garbage.
    other = make_tiny_bert(tmp_path / "other", words=tuple(reversed(DEFAULT_WORDS)), num_layers=1, seed=3)
    callback = RecordingCallback()
    config = DistillConfig(**{**TINY_TRAINING, "epochs": 1}, student=str(other))
    result = distill(sentiment, finetuned.result.output_dir, tmp_path / "out", config, callback)
    assert result.metrics["teacher/test/accuracy"] == finetuned.result.metrics["test/accuracy"]
    assert AutoConfig.from_pretrained(result.output_dir).num_hidden_layers == 1
    saved_vocab = json.loads((result.output_dir / "tokenizer.json").read_text())["model"]["vocab"]
    assert saved_vocab["the"] == json.loads((other / "tokenizer.json").read_text())["model"]["vocab"]["the"]
    assert len(callback.batches) == 8
