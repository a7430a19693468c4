"""finetune trains a classifier, reports every batch and evaluation, and saves a folder Classifier can load."""

from __future__ import annotations

import json
import math

import pytest

from mlcore.data import TextDataset
from mlcore.inference import Classifier
from mlcore.testing import sentiment_rows

BATCH_KEYS = {"train/loss", "train/accuracy", "lr", "epoch", "train/samples_per_s"}
MEMORY_KEYS = {"system/rss_mb"}  # on CPU; at most once a second (tests/mlcore/test_usage_metrics.py)


def test_training_begins_with_the_split_sizes_and_the_model_size(finetuned):
    info = finetuned.callback.info
    # 160 rows: 10% validation, 10% test; 128 training rows make 8 batches of 16 per epoch, for 8 epochs.
    assert {k: info[k] for k in ("train_rows", "valid_rows", "test_rows", "total_steps")} == {
        "train_rows": 128, "valid_rows": 16, "test_rows": 16, "total_steps": 64,
    }  # fmt: skip
    assert info["label_names"] == ["negative", "positive"]
    assert info["device"] == "cpu"
    assert info["num_parameters"] == finetuned.result.num_parameters > 0


def test_every_batch_is_reported_once_with_its_step_and_the_exact_keys(finetuned):
    batches = finetuned.callback.batches
    assert [step for step, _, _ in batches] == list(range(1, 65))
    assert {total for _, total, _ in batches} == {64}
    assert all(set(metrics) - MEMORY_KEYS == BATCH_KEYS for _, _, metrics in batches)
    assert all(math.isfinite(m["train/loss"]) and 0 <= m["train/accuracy"] <= 1 for _, _, m in batches)


def test_the_learning_rate_decays_by_gamma_every_ten_batches(finetuned):
    lrs = {step: metrics["lr"] for step, _, metrics in finetuned.callback.batches}
    assert lrs[1] == lrs[10] == pytest.approx(3e-3, rel=1e-12)
    assert lrs[11] == lrs[20] == pytest.approx(3e-3 * 0.9, rel=1e-12)
    assert lrs[64] == pytest.approx(3e-3 * 0.9**6, rel=1e-12)
    assert all(lrs[s] == pytest.approx(3e-3 * 0.9 ** ((s - 1) // 10), rel=1e-12) for s in lrs)


def test_the_epoch_counter_is_fractional_and_reaches_each_whole_epoch_at_its_last_batch(finetuned):
    epochs = [metrics["epoch"] for _, _, metrics in finetuned.callback.batches]
    assert epochs[0] == pytest.approx(1 / 8)
    assert epochs[7] == 1.0 and epochs[15] == 2.0 and epochs[-1] == 8.0


def test_validation_follows_every_epoch_and_the_test_comes_last(finetuned):
    evaluations = finetuned.callback.evaluations
    assert [(split, step) for split, step, _ in evaluations] == [("val", 8 * e) for e in range(1, 9)] + [("test", 64)]
    assert all(set(m) == {"val/loss", "val/accuracy"} for split, _, m in evaluations if split == "val")
    assert set(evaluations[-1][2]) == {"test/loss", "test/accuracy", "test/macro_f1"}


def test_the_model_learns_the_sentiment_data(finetuned):
    metrics = finetuned.result.metrics
    assert metrics["test/accuracy"] > 0.8
    assert metrics["val/accuracy"] > 0.8
    # The last epoch trains better than the first.
    first = [m["train/loss"] for _, _, m in finetuned.callback.batches[:8]]
    last = [m["train/loss"] for _, _, m in finetuned.callback.batches[-8:]]
    assert sum(last) < 0.5 * sum(first)


def test_the_result_holds_the_flat_metrics_and_the_test_report(finetuned):
    result = finetuned.result
    assert set(result.metrics) == {
        "train/avg_loss", "train/avg_accuracy", "val/loss", "val/accuracy",
        "test/loss", "test/accuracy", "test/macro_f1", "test/report", "ece", "reliability",
    }  # fmt: skip
    batches = finetuned.callback.batches
    assert result.metrics["train/avg_loss"] == pytest.approx(sum(m["train/loss"] for _, _, m in batches) / 64)
    report = result.metrics["test/report"]
    assert sum(map(sum, report["confusion_matrix"])) == 16
    assert report["accuracy"] == result.metrics["test/accuracy"]
    assert (result.steps, result.train_rows, result.label_names) == (64, 128, ["negative", "positive"])


def test_the_saved_folder_holds_weights_tokenizer_and_manifest(finetuned):
    folder = finetuned.result.output_dir
    assert {"config.json", "model.safetensors", "tokenizer.json", "distillery.json"} <= {
        p.name for p in folder.iterdir()
    }
    manifest = json.loads((folder / "distillery.json").read_text())
    assert manifest["kind"] == "finetune"
    assert manifest["label_names"] == ["negative", "positive"]
    assert manifest["max_length"] == 32
    assert manifest["config"]["batch_size"] == 16 and manifest["config"]["lr_gamma"] == 0.9
    assert manifest["steps"] == 64
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert finetuned.result.size_bytes == sum(p.stat().st_size for p in folder.iterdir())


def test_the_saved_model_classifies_new_reviews(finetuned):
    classifier = Classifier.load(finetuned.result.output_dir)
    fresh = TextDataset.from_rows(sentiment_rows(40, seed=1234))
    predictions = classifier.predict(fresh.texts)
    assert {p.label for p in predictions} <= {"negative", "positive"}
    assert all(sum(p.probabilities.values()) == pytest.approx(1.0) for p in predictions)
    assert all(p.probability == max(p.probabilities.values()) for p in predictions)
    correct = sum(p.label == fresh.label_names[y] for p, y in zip(predictions, fresh.labels, strict=True))
    assert correct / len(fresh) > 0.8
