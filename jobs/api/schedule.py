"""The query of GET /api/datasets/{id}/schedule/: the values the learning-rate schedule depends on, each
optional (the recipe's, then the default, otherwise), typed as TrainConfig types them; its ranges are checked
by mlcore.config.

Runs in: the web process.
"""

from __future__ import annotations

import math

from rest_framework import serializers

from mlcore import recipes
from mlcore.config import TrainConfig, config_help, field_choices, field_range

from ..models import Job

HELP = config_help(TrainConfig)


def _bounded(name: str, field: type[serializers.Field]) -> serializers.Field:
    """An optional query value with TrainConfig's range for `name` in the schema (minimum, maximum; an open end is
    refused by mlcore.config in its own words, with a 400 naming it)."""
    bounds = field_range(TrainConfig, name)
    limits = {"min_value": bounds.low} | ({} if math.isinf(bounds.high) else {"max_value": bounds.high})
    if field is serializers.IntegerField:
        limits = {key: int(value) for key, value in limits.items()}
    return field(required=False, help_text=HELP[name], **limits)


class ScheduleQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(Job.CONFIGS), default="finetune", help_text="The job kind.")
    recipe = serializers.ChoiceField(
        choices=list(recipes.RECIPES), required=False, allow_blank=True, help_text="A recipe's values under yours."
    )
    own_test_set = serializers.BooleanField(
        default=False, help_text="A test dataset of its own: no test rows are split off this one."
    )
    learning_rate = _bounded("learning_rate", serializers.FloatField)
    epochs = _bounded("epochs", serializers.IntegerField)
    batch_size = _bounded("batch_size", serializers.IntegerField)
    scheduler = serializers.ChoiceField(
        choices=field_choices(TrainConfig, "scheduler"), required=False, help_text=HELP["scheduler"]
    )
    warmup_ratio = _bounded("warmup_ratio", serializers.FloatField)
    lr_gamma = _bounded("lr_gamma", serializers.FloatField)
    lr_step_every = _bounded("lr_step_every", serializers.IntegerField)
    valid_fraction = _bounded("valid_fraction", serializers.FloatField)
    test_fraction = _bounded("test_fraction", serializers.FloatField)
    max_train_samples = _bounded("max_train_samples", serializers.IntegerField)

    def given(self) -> dict:
        """The training parameters the query sets."""
        return {k: v for k, v in self.validated_data.items() if k not in ("kind", "recipe", "own_test_set")}


class SchedulePreviewSerializer(serializers.Serializer):
    train_rows = serializers.IntegerField(help_text="Rows trained on per epoch, after the splits and the cap.")
    steps_per_epoch = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    warmup_steps = serializers.IntegerField(help_text="0 for the exponential schedule.")
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        help_text="[step, learning rate that step trains with], steps from 1; at most 300, the first, the "
        "warm-up's end and the last among them.",
    )
