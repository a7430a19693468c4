"""mlcore.schedule.preview: the learning rate of every step, known from the row count before launch, is what the
optimiser's scheduler gives each step, over as many steps as make_splits and the batches make."""

from __future__ import annotations

import math

import pytest

from mlcore.config import TrainConfig
from mlcore.data import TextDataset
from mlcore.schedule import MAX_POINTS, preview
from mlcore.train import make_splits

from .test_lr_schedules import lrs_before_each_step


def _rows(n: int) -> TextDataset:
    return TextDataset([f"text {i}" for i in range(n)], [i % 3 for i in range(n)], ["a", "b", "c"])


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(learning_rate=1e-3, scheduler="linear", warmup_ratio=0.1, batch_size=8, epochs=3),
        TrainConfig(learning_rate=2e-5, lr_gamma=0.9, lr_step_every=4, batch_size=16, epochs=2),
        TrainConfig(learning_rate=5e-5, scheduler="linear", batch_size=7, epochs=1),
    ],
    ids=["linear-warmup", "exponential", "linear-no-warmup"],
)
def test_every_step_has_the_rate_the_scheduler_gives_it(config):
    plan = preview(config, 250)
    assert [s for s, _ in plan.points] == list(range(1, plan.total_steps + 1))  # few steps: every one
    expected = lrs_before_each_step(config, plan.total_steps)
    assert [lr for _, lr in plan.points] == pytest.approx(expected, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    "n, options, test_set",
    [(250, {}, False), (10, {}, False), (3, {}, False), (250, {"max_train_samples": 50}, False),
     (250, {"valid_fraction": 0.2, "test_fraction": 0.3}, False), (250, {}, True)],
)  # fmt: skip
def test_the_steps_are_the_runs_own(n, options, test_set):
    config = TrainConfig(batch_size=16, epochs=3, **options)
    splits = make_splits(_rows(n), config, test_dataset=_rows(40) if test_set else None)
    per_epoch = math.ceil(len(splits["train"]) / 16)  # TrainBatches.__len__: a last, shorter batch counts
    plan = preview(config, n, own_test_set=test_set)
    assert plan.train_rows == len(splits["train"])
    assert plan.steps_per_epoch == per_epoch
    assert plan.total_steps == 3 * per_epoch


def test_a_long_run_is_drawn_in_at_most_max_points_with_its_ends_and_warmup_kept():
    config = TrainConfig(learning_rate=1.0, scheduler="linear", warmup_ratio=0.06, batch_size=8, epochs=10)
    plan = preview(config, 25_000)
    assert plan.total_steps == 10 * math.ceil(plan.train_rows / 8) > 20_000
    steps = [s for s, _ in plan.points]
    assert len(steps) <= MAX_POINTS + 2 and steps == sorted(set(steps))
    assert steps[0] == 1 and steps[-1] == plan.total_steps
    peak = dict(plan.points)[plan.warmup_steps + 1]  # the first step after the warm-up trains at the full rate
    assert plan.warmup_steps == math.ceil(0.06 * plan.total_steps) and peak == 1.0
    assert max(lr for _, lr in plan.points) == 1.0
