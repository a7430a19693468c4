"""The REST API's serializers of texts: what classify, explain and Compare's Try a text take and answer (jobs.api.
serializers re-exports them).

Runs in: the web process.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import ModelRecord
from ..registry.compare import MAX_MODELS


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into strings."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


MAX_TEXT_CHARS = 100_000
# Some character that str.strip() keeps, i.e. not only whitespace as the serializers judge it. Not the regex \S:
# JSON Schema's (ECMA's) whitespace lacks \x85 and \x1c-\x1f, which Python strips, so "\x85" passed the
# schema and was refused as blank.
NOT_BLANK = r"[^\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS, "pattern": NOT_BLANK})
class TextField(StrictCharField):
    """A text to classify or explain: a string, not only whitespace (the serializer's validate says so; the
    schema's pattern), at most MAX_TEXT_CHARS characters, kept as sent."""

    def __init__(self, **kwargs):
        super().__init__(allow_blank=False, trim_whitespace=False, max_length=MAX_TEXT_CHARS, **kwargs)


class ClassifyRequestSerializer(serializers.Serializer):
    """Either `text` or `texts` (the schema's ClassifyRequest: one of ClassifyText and ClassifyTexts)."""

    text = TextField(required=False)
    texts = serializers.ListField(child=TextField(), required=False, allow_empty=False)

    def validate(self, attrs):
        if ("text" in attrs) == ("texts" in attrs):
            raise serializers.ValidationError("send either 'text' (one string) or 'texts' (a list of strings)")
        texts = attrs.get("texts", [attrs.get("text")])
        if any(not t.strip() for t in texts):
            raise serializers.ValidationError("texts must not be blank")
        if len(texts) > settings.DISTILLERY_CLASSIFY_MAX_TEXTS:
            raise serializers.ValidationError(
                f"at most {settings.DISTILLERY_CLASSIFY_MAX_TEXTS} texts per request; got {len(texts)}"
            )
        return attrs


# The two request bodies of POST /api/classify/, for the schema (ClassifyRequestSerializer reads the request).


class ClassifyTextSerializer(serializers.Serializer):
    """One text: the answer is one prediction."""

    text = TextField()


class ClassifyTextsSerializer(serializers.Serializer):
    """A list of texts: the answer is a list of predictions, in order."""

    texts = serializers.ListField(
        child=TextField(), min_length=1, max_length=settings.DISTILLERY_CLASSIFY_MAX_TEXTS,
        help_text="At most DISTILLERY_CLASSIFY_MAX_TEXTS texts.",
    )  # fmt: skip


class PredictionSerializer(serializers.Serializer):
    label = serializers.CharField()
    probability = serializers.FloatField()
    probabilities = serializers.DictField(child=serializers.FloatField())
    truncated = serializers.BooleanField(help_text="The text was cut to the model's max_length tokens.")
    model = serializers.IntegerField(help_text="The model that answered (your promoted model's id).")


class ClassifyFileSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, TSV or JSONL (optionally .gz) with a text column.")
    text_column = serializers.CharField(required=False, allow_blank=True, max_length=200)
    model = serializers.PrimaryKeyRelatedField(
        queryset=ModelRecord.objects.none(), required=False, allow_null=True,
        help_text="One of your models; default: your promoted model.",
    )

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:  # the schema is built for an anonymous user
            fields["model"].queryset = ModelRecord.objects.filter(owner=request.user)
        return fields


class ExplainSerializer(serializers.Serializer):
    text = TextField()

    def validate_text(self, value):
        if not value.strip():
            raise serializers.ValidationError("the text must not be blank")
        return value


class ExplainRequestSerializer(ExplainSerializer):
    label = serializers.CharField(
        required=False, help_text="the label to explain (one of the model's); default: the predicted one"
    )


# Model ids as compare takes them: "3,4", at most MAX_MODELS.
IDS_SCHEMA = {"type": "string", "pattern": f"^[0-9]+(,[0-9]+){{0,{MAX_MODELS - 1}}}$"}


@extend_schema_field(IDS_SCHEMA)
class IdsField(serializers.CharField):
    """Model ids as one string, "3,4" (the schema gives its pattern; compare.parse_ids reads it)."""


class CompareIdsSerializer(serializers.Serializer):
    ids = IdsField(
        help_text=f"model ids, comma-separated (at most {MAX_MODELS}), as GET /api/models/compare/ takes them"
    )


class CompareTextSerializer(ExplainSerializer):
    ids = IdsField(
        help_text=f"model ids of yours, comma-separated (at most {MAX_MODELS}), as GET /api/models/compare/ takes them"
    )
