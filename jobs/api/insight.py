"""The REST shapes of what a model's stored metrics say about trusting it (registry.insight): its calibration on
the test rows and a distilled model's agreement with its teacher, read-only parts of a model's representation.

Runs in: the web process.
"""

from __future__ import annotations

from rest_framework import serializers


class ReliabilityBinSerializer(serializers.Serializer):
    low = serializers.FloatField(help_text="The bin's lower confidence edge (excluded).")
    high = serializers.FloatField(help_text="Its upper edge (included).")
    count = serializers.IntegerField(help_text="Test texts whose confidence falls in it.")
    confidence = serializers.FloatField(allow_null=True, help_text="Their mean confidence; null in an empty bin.")
    accuracy = serializers.FloatField(allow_null=True, help_text="The share of them answered right; null if empty.")


class CalibrationSerializer(serializers.Serializer):
    ece = serializers.FloatField(help_text="Expected calibration error on the test rows, 15 equal-width bins.")
    ece_uncalibrated = serializers.FloatField(
        allow_null=True, help_text="The ECE before the temperature was applied; null when none was fitted."
    )
    temperature = serializers.FloatField(help_text="Served probabilities are softmax(logits / temperature).")
    calibrated = serializers.BooleanField(help_text="Whether a temperature was fitted (training param calibrate).")
    reliability = ReliabilityBinSerializer(many=True, help_text="The reliability diagram: one entry per bin.")


class AgreementSerializer(serializers.Serializer):
    val = serializers.FloatField(
        allow_null=True, help_text="The share of validation rows on which its top class is its teacher's."
    )
    test = serializers.FloatField(allow_null=True, help_text="The same on the test rows.")
