"""The REST API's data-quality routes: a dataset's quality report and a finding's rows as CSV; a model's suspected
label errors and their CSV. What they answer was computed by a worker and stored (jobs.datasets.quality).

Runs in: the web process.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from mlcore.quality import FINDINGS

from ..datasets import quality
from ..models import Dataset, DatasetQuality, LabelIssues, ModelRecord
from .schema import error


class PendingSerializer(serializers.Serializer):
    status = serializers.CharField(help_text='"pending"')
    detail = serializers.CharField()


class DatasetQualitySerializer(serializers.ModelSerializer):
    dataset = serializers.IntegerField(source="dataset_id")

    class Meta:
        model = DatasetQuality
        fields = ["dataset", "status", "report", "error", "computed_at"]


class LabelIssuesSerializer(serializers.ModelSerializer):
    model = serializers.IntegerField(source="model_id")
    dataset = serializers.IntegerField(source="dataset_id", allow_null=True)

    class Meta:
        model = LabelIssues
        fields = ["model", "dataset", "summary", "suspects", "created_at"]


def _csv(body: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class DatasetQualityView(APIView):
    """A dataset's quality report: exact and near duplicates, the same text with different labels, markup, empty
    or very short texts, extreme lengths, label imbalance; each finding with its rows and examples."""

    @extend_schema(
        responses={
            200: OpenApiResponse(DatasetQualitySerializer, "The report (status ready), or why it failed (failed)."),
            202: OpenApiResponse(PendingSerializer, "A worker is still computing it: ask again shortly."),
        }
    )
    def get(self, request, pk: int):
        dataset = get_object_or_404(Dataset.objects.visible_to(request.user), pk=pk)
        report = quality.report_for(dataset)
        if report.status == DatasetQuality.Status.PENDING:
            body = {"status": report.status, "detail": "a worker is computing the report; ask again shortly"}
            return Response(body, status=202)
        return Response(DatasetQualitySerializer(report).data)


class DatasetQualityCSVView(APIView):
    """One finding's rows as CSV: row, label, group (for duplicates and conflicting labels), words, text."""

    @extend_schema(
        parameters=[OpenApiParameter("finding", str, enum=list(FINDINGS), required=True, description="which rows")],
        responses={
            (200, "text/csv"): bytes,
            404: error("No such dataset of yours, or its report is not ready."),
        },
    )  # fmt: skip
    def get(self, request, pk: int):
        dataset = get_object_or_404(Dataset.objects.visible_to(request.user), pk=pk)
        finding = request.query_params.get("finding", "")
        if finding not in FINDINGS:
            raise ValidationError({"finding": [f"must be one of {', '.join(FINDINGS)}"]})
        report = DatasetQuality.objects.filter(dataset=dataset, status=DatasetQuality.Status.READY).first()
        if report is None:
            raise NotFound("the dataset's quality report is not ready")
        body = quality.finding_csv(dataset, report, finding)
        return _csv(body, f"distillery-dataset-{dataset.pk}-{finding}.csv")


def _issues(request, pk: int) -> LabelIssues:
    record = get_object_or_404(ModelRecord.objects.visible_to(request.user), pk=pk)
    issues = LabelIssues.objects.filter(model=record).select_related("dataset").first()
    if issues is None:
        raise NotFound("no label-error check for this model (it was imported, or trained before the check existed)")
    return issues


class LabelIssuesView(APIView):
    """The training rows whose given label the model rejects out of fold (confident learning): each with its
    text, given label, suggested label and the given label's probability (confidence), most suspect first."""

    @extend_schema(responses={200: LabelIssuesSerializer, 404: error("No such model of yours, or no check for it.")})
    def get(self, request, pk: int):
        return Response(LabelIssuesSerializer(_issues(request, pk)).data)


class LabelIssuesCSVView(APIView):
    """The suspected label errors as CSV: row, label (given), suggested, confidence, suggested_probability, words,
    text (in full)."""

    @extend_schema(
        responses={
            (200, "text/csv"): bytes,
            404: error("No such model of yours, no check for it, or its dataset was deleted."),
        }
    )
    def get(self, request, pk: int):
        issues = _issues(request, pk)
        if issues.dataset is None:
            raise NotFound("the model's dataset was deleted")
        return _csv(quality.label_issues_csv(issues), f"distillery-model-{pk}-label-issues.csv")
