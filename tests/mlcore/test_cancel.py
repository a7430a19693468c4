"""A callback stops training between batches by returning True from should_stop."""

from __future__ import annotations

import pytest

from mlcore.callbacks import Cancelled
from mlcore.config import DistillConfig, TrainConfig
from mlcore.distill import distill
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING


def test_stopping_after_batch_3_raises_cancelled_after_exactly_3_batches_and_saves_nothing(
    tiny_bert, sentiment, tmp_path
):
    callback = RecordingCallback(stop_after=3)
    with pytest.raises(Cancelled):
        finetune(sentiment, str(tiny_bert), tmp_path / "out", TrainConfig(**TINY_TRAINING), callback)
    assert [step for step, _, _ in callback.batches] == [1, 2, 3]
    assert callback.evaluations == []
    assert not (tmp_path / "out").exists()


def test_a_stop_requested_before_training_runs_no_batch(tiny_bert, sentiment, tmp_path):
    callback = RecordingCallback(stop_after=0)
    with pytest.raises(Cancelled):
        finetune(sentiment, str(tiny_bert), tmp_path / "out", TrainConfig(**TINY_TRAINING), callback)
    assert callback.info is not None and callback.batches == []


def test_distillation_can_be_cancelled_too(finetuned, sentiment, tmp_path):
    callback = RecordingCallback(stop_after=2)
    with pytest.raises(Cancelled):
        distill(sentiment, finetuned.result.output_dir, tmp_path / "out", DistillConfig(**TINY_TRAINING), callback)
    assert len(callback.batches) == 2
