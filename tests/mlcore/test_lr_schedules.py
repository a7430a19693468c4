"""The linear schedule warms up from 0 over warmup_ratio of the steps, then decays linearly to 0."""

from __future__ import annotations

import pytest
import torch

from mlcore.config import TrainConfig
from mlcore.optim import make_optimizer, make_scheduler
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING


def lrs_before_each_step(config: TrainConfig, total_steps: int) -> list[float]:
    """The learning rate each of total_steps optimiser steps runs with."""
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    scheduler, every = make_scheduler(optimizer, config, total_steps)
    lrs = []
    for step in range(1, total_steps + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if step % every == 0:
            scheduler.step()
    return lrs


def test_linear_warmup_then_decay_at_given_steps():
    config = TrainConfig(learning_rate=1.0, scheduler="linear", warmup_ratio=0.2)
    lrs = lrs_before_each_step(config, 10)  # warm-up: ceil(0.2 * 10) = 2 steps
    expected = [0.0, 0.5, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8]
    assert lrs == pytest.approx(expected, abs=1e-12)


def test_linear_without_warmup_starts_at_the_full_rate_and_ends_one_step_short_of_zero():
    lrs = lrs_before_each_step(TrainConfig(learning_rate=0.8, scheduler="linear"), 4)
    assert lrs == pytest.approx([0.8, 0.6, 0.4, 0.2], abs=1e-12)


def test_the_exponential_schedule_is_still_the_studys():
    lrs = lrs_before_each_step(TrainConfig(learning_rate=1.0, lr_gamma=0.5, lr_step_every=3), 7)
    assert lrs == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25], abs=1e-12)


def test_fine_tuning_reports_the_linear_schedules_rate_for_every_batch(tiny_bert, sentiment, tmp_path):
    callback = RecordingCallback()
    config = TrainConfig(**{**TINY_TRAINING, "epochs": 2, "scheduler": "linear", "warmup_ratio": 0.25})
    finetune(sentiment, str(tiny_bert), tmp_path / "out", config, callback)
    lrs = [m["lr"] for _, _, m in callback.batches]  # 16 steps, 4 of warm-up
    assert len(lrs) == 16
    assert lrs[:5] == pytest.approx([0, 0.25 * 3e-3, 0.5 * 3e-3, 0.75 * 3e-3, 3e-3], abs=1e-15)
    assert lrs[-1] == pytest.approx(3e-3 / 12, abs=1e-15)
