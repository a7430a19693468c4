"""The training loop waits for the device once per batch: every batch metric comes back in one transfer, and a
batch without padding makes the model check no attention mask."""

from __future__ import annotations

import pytest

from mlcore.config import DistillConfig, TrainConfig
from mlcore.distill import distill
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING, count_syncs


@pytest.fixture
def mlcore_syncs(monkeypatch):
    """Counts syncing calls made from mlcore's training loop (not from transformers' internals)."""
    return count_syncs(monkeypatch, ("mlcore.loop", "mlcore.distill", "mlcore.losses"))


# No validation or test split: only training batches run, so every counted call is the loop's.
NO_EVAL = {**TINY_TRAINING, "epochs": 1, "valid_fraction": 0.0, "test_fraction": 0.0}


def test_fine_tuning_fetches_each_batchs_metrics_in_exactly_one_call(tiny_bert, sentiment, tmp_path, mlcore_syncs):
    callback = RecordingCallback()
    finetune(sentiment, str(tiny_bert), tmp_path / "out", TrainConfig(**NO_EVAL), callback)
    assert len(callback.batches) == 10
    assert mlcore_syncs == ["tolist"] * 10


def test_distillation_fetches_its_loss_parts_in_the_same_single_call(finetuned, sentiment, tmp_path, mlcore_syncs):
    callback = RecordingCallback()
    distill(sentiment, finetuned.result.output_dir, tmp_path / "out", DistillConfig(**NO_EVAL), callback)
    assert len(callback.batches) == 10
    assert {"train/soft_loss", "train/hard_loss"} <= set(callback.batches[0][2])
    assert mlcore_syncs == ["tolist"] * 10


def test_batches_without_padding_spare_the_models_mask_check(tiny_bert, long_reviews, tmp_path, monkeypatch):
    # transformers asks `mask.all()` in every forward pass that gets an attention mask (masking_utils), which
    # waits for a GPU. long_reviews are 17-32 tokens long: at max_length 16 no batch has padding.
    mask_checks = count_syncs(monkeypatch, ("transformers.masking_utils",))
    finetune(long_reviews, str(tiny_bert), tmp_path / "padded", TrainConfig(**NO_EVAL), RecordingCallback())
    assert 0 < len(mask_checks) <= 10  # at max_length 32 batches need padding, and only they are checked
    mask_checks.clear()
    callback = RecordingCallback()
    finetune(long_reviews, str(tiny_bert), tmp_path / "cut", TrainConfig(**{**NO_EVAL, "max_length": 16}), callback)
    assert len(callback.batches) == 10
    assert mask_checks == []
