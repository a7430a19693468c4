"""The learning-rate schedule a launch would train with, before launch (the launch form's preview).

Runs in: the web process. No model and no file is read: the steps follow from the dataset's row count
(mlcore.schedule.preview), the values the user gave, then the recipe's, then the defaults, as a launch merges them.
"""

from __future__ import annotations

import dataclasses

from django.core.exceptions import ValidationError

from mlcore.config import ConfigError, TrainConfig, config_from_dict
from mlcore.schedule import SchedulePreview, preview

from ..models import Dataset
from .launch import recipe_params

# The parameters the schedule depends on; the others do not change a step's learning rate.
SCHEDULE_PARAMETERS = (
    "learning_rate", "epochs", "batch_size", "scheduler", "warmup_ratio", "lr_gamma", "lr_step_every",
    "valid_fraction", "test_fraction", "max_train_samples",
)  # fmt: skip


def schedule_preview(
    dataset: Dataset, given: dict, *, kind: str = "finetune", recipe: str = "", own_test_set: bool = False
) -> SchedulePreview:
    """Every step's learning rate for a `kind` job on `dataset` with `given` parameters over `recipe`'s; a
    ValidationError naming the parameter otherwise."""
    preset = recipe_params(recipe, kind) if recipe else {}
    params = {k: v for k, v in {**preset, **given}.items() if k in SCHEDULE_PARAMETERS}
    try:
        config = config_from_dict(TrainConfig, params)
    except ConfigError as exc:
        raise ValidationError({"params": str(exc)}) from None
    return preview(config, dataset.num_rows, own_test_set=own_test_set)


def as_dict(plan: SchedulePreview) -> dict:
    return dataclasses.asdict(plan) | {"points": [list(point) for point in plan.points]}
