"""The REST API's test-row routes: one cell of a model's confusion matrix as rows (JSON, paginated, or CSV), two
models' disagreements, an evaluation queued for a model stored without its rows, and an explanation by a chosen
model (Explain both on the disagreement page).

Runs in: the web process. Every route reads stored rows (registry.rows); the only model it runs is the
explanation's, through the explain path classify uses (serving.engines.explainer_for).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import ModelRecord
from ..registry import rows as stored
from ..serving import engines
from ..serving.evaluate import create_evaluate_job
from . import serializers as s
from .pagination import Pagination
from .schema import error, invalid
from .throttles import ClassifyRateThrottle

NO_ROWS = "No such model of yours (or one you can see)."


class NoRows(APIException):
    status_code = 409
    default_detail = "the model has no stored test rows: queue POST /api/models/{id}/evaluate/ first"
    default_code = "no_test_rows"


def refuse(exc: DjangoValidationError):
    """A service's ValidationError as a 400: {field: [messages]}, or {"detail": message} for one about the whole."""
    if hasattr(exc, "error_dict"):
        raise ValidationError(exc.message_dict)
    raise ValidationError({"detail": exc.messages[0]})


def _visible(request, pk) -> ModelRecord:
    return get_object_or_404(ModelRecord.objects.visible_to(request.user), pk=pk)


class CellQuerySerializer(serializers.Serializer):
    true = serializers.CharField(required=False, help_text="the true label (a label name); all rows without it")
    predicted = serializers.CharField(required=False, help_text="the predicted label; all rows without it")
    order = serializers.ChoiceField(
        choices=list(stored.ORDERS), required=False, default=stored.DEFAULT_ORDER,
        help_text="confident: the most confident predictions first; unsure: the least",
    )  # fmt: skip


class RowSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="the row's position in the dataset its test rows come from (0: first)")
    text = serializers.CharField()
    true = serializers.CharField(help_text="the true label")
    predicted = serializers.CharField(help_text="the predicted label")
    confidence = serializers.FloatField(help_text="the predicted label's probability")
    probabilities = serializers.DictField(child=serializers.FloatField(), help_text="every label's probability")
    truncated = serializers.BooleanField(help_text="the text had more tokens than max_length: only part was read")


class ModelErrorsView(generics.ListAPIView):
    """A model's test rows of one cell of its confusion matrix (?true=&predicted=), ordered by confidence."""

    serializer_class = RowSerializer
    pagination_class = Pagination

    def get_queryset(self):
        record = _visible(self.request, self.kwargs["pk"])
        if record.test_rows_count is None:
            raise NoRows()
        query = CellQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        self.record = record
        try:
            return stored.cell_rows(record, query.validated_data.get("true"), query.validated_data.get("predicted"),
                                    query.validated_data["order"])  # fmt: skip
        except DjangoValidationError as exc:
            refuse(exc)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([stored.row_dict(self.record, row) for row in page])

    @extend_schema(
        parameters=[CellQuerySerializer],
        responses={200: RowSerializer(many=True), 404: error(NO_ROWS), 409: error(NoRows.default_detail)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CSVRenderer(BaseRenderer):
    """Lets a client ask for text/csv; the CSV itself is made by the view (a refusal is its message as text)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        detail = data.get("detail", data) if isinstance(data, dict) else data
        return str(detail).encode(self.charset)


class ModelErrorsCSVView(APIView):
    """The same cell's rows as a CSV, every text cell neutralised against formula injection."""

    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[CellQuerySerializer],
        responses={(200, "text/csv"): bytes, 404: error(NO_ROWS), 409: error(NoRows.default_detail)},
    )
    def get(self, request, pk):
        record = _visible(request, pk)
        if record.test_rows_count is None:
            raise NoRows()
        query = CellQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        true, predicted = query.validated_data.get("true"), query.validated_data.get("predicted")
        try:
            rows = stored.cell_rows(record, true, predicted, query.validated_data["order"])
        except DjangoValidationError as exc:
            refuse(exc)
        return csv_response(stored.csv_text(record, rows), stored.csv_name(record, true, predicted))


def csv_response(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class ModelEvaluateView(APIView):
    """Queue the evaluation of a model of yours stored without its test rows (on the CPU queue): its rows are
    found again as training split them, classified and stored. The job already queued for it, if any."""

    needs_redis = ("post",)

    @extend_schema(
        request=None,
        responses={202: s.JobSerializer, 400: invalid("Its test rows cannot be found again; the body says why.")},
    )
    def post(self, request, pk):
        record = get_object_or_404(ModelRecord.objects.filter(owner=request.user), pk=pk)
        try:
            job = create_evaluate_job(request.user, record)
        except DjangoValidationError as exc:
            refuse(exc)
        return Response(s.JobSerializer(job, context={"request": request}).data, status=202)


class PairQuerySerializer(serializers.Serializer):
    a_label = serializers.CharField(required=False, help_text="only rows model a labels so (a cell's row)")
    b_label = serializers.CharField(required=False, help_text="only rows model b labels so (a cell's column)")
    order = serializers.ChoiceField(
        choices=list(stored.PAIR_ORDERS), required=False, default="a",
        help_text="a, b: that model's most confident answers first; a_unsure, b_unsure: its least confident first",
    )  # fmt: skip


class AnswerSerializer(serializers.Serializer):
    predicted = serializers.CharField()
    confidence = serializers.FloatField()
    probabilities = serializers.DictField(child=serializers.FloatField())
    truncated = serializers.BooleanField()


class PairRowSerializer(serializers.Serializer):
    row = serializers.IntegerField()
    text = serializers.CharField()
    true = serializers.CharField(help_text="the true label")
    truncated = serializers.BooleanField(help_text="either model read only part of the text")
    a = AnswerSerializer(help_text="model a's answer")
    b = AnswerSerializer(help_text="model b's answer")


class DisagreementsSerializer(serializers.Serializer):
    a = serializers.IntegerField(help_text="model a's id (the table's rows)")
    b = serializers.IntegerField(help_text="model b's id (the table's columns)")
    labels = serializers.ListField(child=serializers.CharField())
    table = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="test rows per (a's label, b's label): table[i][j] rows a labels labels[i] and b labels[j]",
    )
    rows = serializers.IntegerField(help_text="test rows both models answered")
    disagreeing = serializers.IntegerField(help_text="rows where their labels differ")
    count = serializers.IntegerField(help_text="disagreeing rows matching the filter")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PairRowSerializer(many=True)


class DisagreementsView(APIView):
    """Where two models tested on the same rows of the same dataset (a teacher and its student) disagree: a x b
    counts per pair of labels, and the disagreeing rows (of one cell with ?a_label=&b_label=), paginated."""

    @extend_schema(
        parameters=[PairQuerySerializer],
        responses={
            200: DisagreementsSerializer,
            400: invalid("The two cannot be compared row by row (no stored rows, other datasets or rows); why."),
            404: error("Either id is not a model you can see."),
        },
    )
    def get(self, request, pk, other):
        a, b = _visible(request, pk), _visible(request, other)
        query = PairQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            pair = stored.Pair.load(a, b)
            found = pair.disagreeing(
                query.validated_data.get("a_label"), query.validated_data.get("b_label"), query.validated_data["order"]
            )
        except DjangoValidationError as exc:
            refuse(exc)
        paginator = Pagination()
        page = paginator.paginate_queryset(found, request, view=self)
        table = pair.table()
        body = {
            "a": a.pk, "b": b.pk, "labels": pair.labels, "table": table, "rows": len(pair.answers),
            "disagreeing": len(pair.answers) - sum(table[i][i] for i in range(len(table))), "count": len(found),
            "next": paginator.get_next_link(), "previous": paginator.get_previous_link(), "results": pair.rows(page),
        }  # fmt: skip
        return Response(body)


class ModelExplainView(APIView):
    """Why this model (one you can see) labels a text so: last-layer attention and per-token importance, as
    POST /api/explain/ answers for the promoted model."""

    throttle_classes = [ClassifyRateThrottle]

    def classify_cost(self, request) -> int:
        return ClassifyRateThrottle.EXPLAIN_COST

    @extend_schema(
        request=s.ExplainRequestSerializer, responses={200: dict, 404: error("No such model you can see.")}
    )
    def post(self, request, pk):
        record = _visible(request, pk)
        payload = s.ExplainRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        label = payload.validated_data.get("label")
        if label is not None and label not in record.label_names:
            raise ValidationError({"label": [f"the model's labels are {', '.join(record.label_names)}"]})
        from mlcore.explain import explain  # imports torch: here, at the first explanation, not at web start

        explanation = explain(engines.explainer_for(record), payload.validated_data["text"], label=label)
        return Response({**explanation.to_dict(), "model": record.pk, "explained_precision": "fp32"})

