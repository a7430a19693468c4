"""The query of GET /api/datasets/{id}/schedule/: the values the learning-rate schedule depends on, each
optional (the recipe's, then the default, otherwise), typed as TrainConfig types them; its ranges are checked
by mlcore.config.

Runs in: the web process.
"""

from __future__ import annotations

from rest_framework import serializers

from mlcore.config import TrainConfig, config_help, field_choices

from ..models import Job

HELP = config_help(TrainConfig)


class ScheduleQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(Job.CONFIGS), default="finetune", help_text="The job kind.")
    recipe = serializers.CharField(required=False, allow_blank=True, help_text="A recipe's values under yours.")
    own_test_set = serializers.BooleanField(
        default=False, help_text="A test dataset of its own: no test rows are split off this one."
    )
    learning_rate = serializers.FloatField(required=False, help_text=HELP["learning_rate"])
    epochs = serializers.IntegerField(required=False, help_text=HELP["epochs"])
    batch_size = serializers.IntegerField(required=False, help_text=HELP["batch_size"])
    scheduler = serializers.ChoiceField(
        choices=field_choices(TrainConfig, "scheduler"), required=False, help_text=HELP["scheduler"]
    )
    warmup_ratio = serializers.FloatField(required=False, help_text=HELP["warmup_ratio"])
    lr_gamma = serializers.FloatField(required=False, help_text=HELP["lr_gamma"])
    lr_step_every = serializers.IntegerField(required=False, help_text=HELP["lr_step_every"])
    valid_fraction = serializers.FloatField(required=False, help_text=HELP["valid_fraction"])
    test_fraction = serializers.FloatField(required=False, help_text=HELP["test_fraction"])
    max_train_samples = serializers.IntegerField(required=False, help_text=HELP["max_train_samples"])

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
