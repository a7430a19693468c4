"""The REST API's bodies of the promote guard and the promotion history (DRF serializers).

Runs in: the web process.
"""

from __future__ import annotations

from rest_framework import serializers

from ..promotions import Promotion
from ..registry import guard, history
from .serializers import ModelRecordSerializer

STATUSES = [guard.PASSED, guard.FAILED, guard.NOT_APPLICABLE, guard.NOT_MEASURED]


class RuleSerializer(serializers.Serializer):
    """One rule's verdict on a model (jobs.registry.guard.Rule)."""

    name = serializers.ChoiceField(choices=["teacher_share", "baseline_margin", "latency", "calibration"])
    title = serializers.CharField()
    setting = serializers.FloatField(
        allow_null=True, help_text="The operator's figure (DISTILLERY_PROMOTE_*): share, margin, ms or ECE; null: off."
    )
    threshold = serializers.FloatField(allow_null=True, help_text="The bound the value is held to, in its unit.")
    comparison = serializers.ChoiceField(choices=[">=", "<="], help_text="value <comparison> threshold passes.")
    value = serializers.FloatField(allow_null=True, help_text="The model's figure; null when not stored.")
    unit = serializers.CharField()
    status = serializers.ChoiceField(
        choices=STATUSES,
        help_text="Only failed blocks; not_applicable: off or not this model's; not_measured: no figure stored.",
    )
    detail = serializers.CharField()


class GuardSerializer(serializers.Serializer):
    passed = serializers.BooleanField(help_text="No rule failed: the model is promoted without an override.")
    failed = serializers.ListField(child=serializers.CharField(), help_text="Names of the failed rules.")
    rules = RuleSerializer(many=True)


class PromoteSerializer(serializers.Serializer):
    override = serializers.BooleanField(
        default=False, help_text="Promote even though rules fail (recorded in the history with the failed rules)."
    )
    reason = serializers.CharField(
        default="", allow_blank=True, max_length=500, help_text="Why; kept with the promotion."
    )


class PromotionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True, help_text="Who promoted.")
    failed_rules = RuleSerializer(many=True, read_only=True)
    can_roll_back = serializers.SerializerMethodField()

    class Meta:
        model = Promotion
        fields = [
            "id", "owner", "created_at", "model", "model_name", "replaced", "replaced_name", "overridden", "reason",
            "failed_rules", "rollback_of", "rolled_back_at", "can_roll_back",
        ]  # fmt: skip
        read_only_fields = fields

    def get_can_roll_back(self, obj) -> bool:
        """Whether POST rollback/ would act (registry.history.can_roll_back; the view sets `newest`)."""
        return history.can_roll_back(obj, self.context.get("newest", {}))


class PromotedModelSerializer(ModelRecordSerializer):
    """The model after POST promote/, with the guard's verdict and the promotion recorded (null when it already
    served: nothing changed)."""

    guard = GuardSerializer(read_only=True)
    promotion = PromotionSerializer(read_only=True, allow_null=True)

    class Meta(ModelRecordSerializer.Meta):
        fields = [*ModelRecordSerializer.Meta.fields, "guard", "promotion"]
        read_only_fields = fields


class RefusedSerializer(serializers.Serializer):
    """A 409: the model fails rules and no override was given."""

    detail = serializers.CharField()
    failed = RuleSerializer(many=True)
