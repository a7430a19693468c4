"""The learning-rate schedule as numbers: the factor each schedule gives every step, and the whole curve a config
will produce on a dataset of a given size, known before launch (the launch form draws it).

No torch here: mlcore.optim builds the optimiser's schedulers on these definitions, and the web process previews
them without a model. Steps per epoch come from the row count alone, through the same split sizes
(mlcore.data.split_sizes) and batch count (ceil(train rows / batch_size), mlcore.batching.TrainBatches) a run uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlcore.config import TrainConfig
from mlcore.data import split_sizes

MAX_POINTS = 300  # a curve drawn in the browser needs no more; the first, warm-up end and last steps are kept


def warmup_steps(config: TrainConfig, total_steps: int) -> int:
    return math.ceil(config.warmup_ratio * total_steps)


class LinearWarmupDecay:
    """The learning-rate factor before optimiser step s + 1 (s counts finished steps, from 0).

    s / warmup while warming up, then (total - s) / (total - warmup): 1 at the end of the warm-up, 1 / (total -
    warmup) for the last step, 0 after it. A class rather than a lambda so that it is picklable.
    """

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup = warmup
        self.total = total

    def __call__(self, s: int) -> float:
        if s < self.warmup:
            return s / self.warmup
        return max(0.0, (self.total - s) / max(1, self.total - self.warmup))


@dataclass(frozen=True)
class SchedulePreview:
    train_rows: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    points: list[tuple[int, float]]  # (step, the learning rate that step trains with), steps counted from 1


def factor(config: TrainConfig, total_steps: int, finished: int) -> float:
    """The factor on config.learning_rate for the step after `finished` steps, as mlcore.optim's schedulers give it
    (the exponential one is stepped after every lr_step_every-th step)."""
    if config.scheduler == "exponential":
        return config.lr_gamma ** (finished // config.lr_step_every)
    return LinearWarmupDecay(warmup_steps(config, total_steps), total_steps)(finished)


def preview(config: TrainConfig, num_rows: int, *, own_test_set: bool = False) -> SchedulePreview:
    """The learning rate of every step a run of `config` on `num_rows` labelled rows trains with (at most MAX_POINTS
    of them, evenly spread). own_test_set: a separate test dataset, so no test rows are split off these."""
    test_fraction = 0.0 if own_test_set else config.test_fraction
    train_rows, _, _ = split_sizes(num_rows, valid_fraction=config.valid_fraction, test_fraction=test_fraction)
    if config.max_train_samples is not None:
        train_rows = min(train_rows, config.max_train_samples)
    per_epoch = -(-train_rows // config.batch_size)
    total = config.epochs * per_epoch
    warmup = warmup_steps(config, total) if config.scheduler == "linear" else 0
    steps = sorted({1, total, *(s for s in (warmup, warmup + 1) if 1 <= s <= total), *_spread(total)})
    points = [(s, config.learning_rate * factor(config, total, s - 1)) for s in steps]
    return SchedulePreview(train_rows, per_epoch, total, warmup, points)


def _spread(total: int) -> list[int]:
    if total <= MAX_POINTS:
        return list(range(1, total + 1))
    return [1 + round(i * (total - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)]
