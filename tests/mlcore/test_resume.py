"""A run stopped after a checkpoint and resumed in a fresh call ends exactly where an uninterrupted run does."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from mlcore.callbacks import Cancelled
from mlcore.checkpoint import CheckpointMismatch
from mlcore.config import DistillConfig, TrainConfig
from mlcore.distill import distill
from mlcore.testing import RecordingCallback, learnt
from mlcore.train import finetune

from .conftest import TINY_TRAINING

# 3 epochs of 8 batches. BERT's dropout is on, so an exact resume needs the RNG state too.
SETTINGS = {**TINY_TRAINING, "epochs": 3}


def assert_same_weights(a, b):
    first, second = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_fine_tuning_resumed_mid_epoch_gives_the_same_weights_metrics_and_batch_reports(tiny_bert, sentiment, tmp_path):
    whole = RecordingCallback()
    uninterrupted = finetune(sentiment, str(tiny_bert), tmp_path / "whole", TrainConfig(**SETTINGS), whole)

    config = TrainConfig(**SETTINGS, checkpoint_every=5)
    first = RecordingCallback(stop_after=10)  # step 10 is the second batch of epoch 2
    with pytest.raises(Cancelled):
        finetune(sentiment, str(tiny_bert), tmp_path / "resumed", config, first)
    assert [step for step, _ in first.checkpoints] == [5, 10]

    second = RecordingCallback()
    resumed = finetune(sentiment, str(tiny_bert), tmp_path / "resumed", config, second)
    assert second.info["resumed_from_step"] == 10 and second.info["total_steps"] == 24
    assert [step for step, _, _ in second.batches] == list(range(11, 25))
    assert learnt(first.batches + second.batches) == learnt(whole.batches)
    assert first.evaluations + second.evaluations == whole.evaluations
    assert resumed.metrics == uninterrupted.metrics
    assert resumed.steps == 24
    assert_same_weights(resumed.output_dir, uninterrupted.output_dir)


def test_distillation_resumed_at_an_epoch_boundary_with_every_option_on_is_exact(finetuned, sentiment, tmp_path):
    options = {
        **TINY_TRAINING, "epochs": 2, "scheduler": "linear", "warmup_ratio": 0.2, "weight_decay": 0.01,
        "hidden_loss_weight": 1.0, "truncation": "head_tail",
    }  # fmt: skip
    teacher = finetuned.result.output_dir
    whole = RecordingCallback()
    uninterrupted = distill(sentiment, teacher, tmp_path / "whole", DistillConfig(**options), whole)

    config = DistillConfig(**options, checkpoint_every=4)
    first = RecordingCallback(stop_after=8)  # the last batch of epoch 1: its validation is cut short
    with pytest.raises(Cancelled):
        distill(sentiment, teacher, tmp_path / "resumed", config, first)
    assert first.evaluations == []

    second = RecordingCallback()
    resumed = distill(sentiment, teacher, tmp_path / "resumed", config, second)
    assert second.info["resumed_from_step"] == 8
    assert learnt(first.batches + second.batches) == learnt(whole.batches)
    assert second.evaluations == whole.evaluations  # epoch 1's validation runs on resume
    assert resumed.metrics == uninterrupted.metrics
    assert_same_weights(resumed.output_dir, uninterrupted.output_dir)


@pytest.fixture
def stopped_run(tiny_bert, sentiment, tmp_path):
    """A run cancelled after step 3 with a checkpoint at step 2, in tmp_path/"out"."""
    config = TrainConfig(**SETTINGS, checkpoint_every=2)
    with pytest.raises(Cancelled):
        finetune(sentiment, str(tiny_bert), tmp_path / "out", config, RecordingCallback(stop_after=3))
    return config


def test_resuming_with_another_batch_size_is_refused_with_the_difference_named(
    tiny_bert, sentiment, tmp_path, stopped_run
):
    config = TrainConfig(**{**SETTINGS, "batch_size": 8}, checkpoint_every=2)
    with pytest.raises(
        CheckpointMismatch, match=r"another run \(batch_size was 16, is now 8\); start over with resume=False"
    ):
        finetune(sentiment, str(tiny_bert), tmp_path / "out", config)


def test_resuming_on_other_data_is_refused(tiny_bert, sentiment, tmp_path, stopped_run):
    fewer = sentiment.subset(range(150))
    with pytest.raises(CheckpointMismatch, match="other data"):
        finetune(fewer, str(tiny_bert), tmp_path / "out", stopped_run)


def test_resume_false_starts_over_and_another_device_setting_still_resumes(tiny_bert, sentiment, tmp_path, stopped_run):
    fresh = RecordingCallback(stop_after=1)
    with pytest.raises(Cancelled):
        finetune(sentiment, str(tiny_bert), tmp_path / "out", stopped_run, fresh, resume=False)
    assert fresh.info["resumed_from_step"] == 0 and fresh.batches[0][0] == 1
    # The checkpoint at step 2 is still there (the fresh run stopped before writing its own).
    moved = RecordingCallback(stop_after=3)
    with pytest.raises(Cancelled):
        finetune(
            sentiment,
            str(tiny_bert),
            tmp_path / "out",
            TrainConfig(**{**SETTINGS, "device": "auto"}, checkpoint_every=3),
            moved,
        )
    assert moved.info["resumed_from_step"] == 2
