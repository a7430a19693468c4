"""The REST API's views (DRF): each reads and checks the request, calls the domain, and maps its refusals to
4xx and its unavailability to 503.

Runs in: the web process.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.storage import default_storage
from django.db.models.deletion import ProtectedError
from django.http import HttpResponseRedirect, JsonResponse
from django.views import defaults
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins, parsers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from mlcore.config import TrainConfig

from ..datasets.preview import PREVIEW_API_WAIT_SECONDS, PREVIEW_ROWS, PreviewUnavailable, dataset_preview
from ..datasets.services import dataset_folders
from ..files import presigned_url, signs_urls
from ..models import Dataset, Job, MetricPoint, ModelRecord, Sweep
from ..registry import compare, students
from ..registry import services as registry
from ..serving import speed
from ..serving.classify import side_by_side
from ..sweeps.services import cancel_sweep, delete_sweep
from ..training.launch import delete_job, request_cancel
from ..training.schedule import as_dict, schedule_preview
from . import apidocs as docs
from . import serializers as s
from .downloads import file_chunks, model_download, stream
from .filters import JobFilter, ModelRecordFilter, SweepFilter
from .parsers import JSONParser
from .promotions import PromoteActions
from .renderers import FILE_FORMATS, ComparisonCSVRenderer, ComparisonPNGRenderer, MetricsCSVRenderer
from .schedule import ScheduleQuerySerializer
from .throttles import ClassifyRateThrottle


@docs.datasets
class DatasetViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.DatasetSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, JSONParser]

    def get_queryset(self):
        return Dataset.objects.visible_to(self.request.user)

    @docs.dataset_folders
    @action(detail=False, methods=["get"], pagination_class=None)
    def folders(self, request):
        """Server folders (IMDB layout) that POST /api/datasets/ can import with server_path and split."""
        return Response(dataset_folders())

    @docs.dataset_preview
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        """Sample rows, label distribution, token-length histogram and the share of texts max_length cuts."""
        dataset = self.get_object()
        numbers = {}
        for name, default in (("max_length", TrainConfig.max_length), ("rows", PREVIEW_ROWS)):
            try:
                numbers[name] = int(request.query_params.get(name, default))
            except ValueError:
                raise ValidationError({name: ["must be an integer"]}) from None
        try:  # made in a helper process: this thread waits for it without holding up other requests
            body = dataset_preview(
                dataset, model_id=request.query_params.get("model", ""), wait=PREVIEW_API_WAIT_SECONDS, **numbers
            )
        except DjangoValidationError as exc:
            s.raise_drf(exc)
        except PreviewUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from None
        if body is None:
            raise ServiceUnavailable("the preview is still being made (a large file); ask again in a few seconds")
        return Response(body)

    @docs.dataset_schedule
    @action(detail=True, methods=["get"])
    def schedule(self, request, pk=None):
        """The learning rate of every step a job on this dataset would train with, before launch: steps from its
        row count, batch size and epochs; the query's values over a recipe's over the defaults."""
        query = ScheduleQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        options = {k: query.validated_data.get(k) for k in ("kind", "recipe", "own_test_set")}
        try:
            return Response(as_dict(schedule_preview(self.get_object(), query.given(), **options)))
        except DjangoValidationError as exc:
            s.raise_drf(exc)

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except ProtectedError:
            raise ValidationError({"detail": "jobs use this dataset; delete them first"}) from None
        instance.file.delete(save=False)


class ErrorsAsJSON:
    """An error or an OPTIONS asked for as CSV or PNG is still answered as JSON: a table or figure of a message
    says nothing, and the file renderers only know the endpoint's own data (a metadata dict made them 500)."""

    def handle_exception(self, exc):
        self._answer_in_json()
        return super().handle_exception(exc)

    def options(self, request, *args, **kwargs):
        self._answer_in_json()
        return super().options(request, *args, **kwargs)

    def _answer_in_json(self):
        if getattr(getattr(self.request, "accepted_renderer", None), "format", None) in FILE_FORMATS:
            self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type


class DestroyThroughService(mixins.DestroyModelMixin):
    """DELETE calls `delete_service`, whose refusal (a ValidationError) becomes a 400 with its reason."""

    delete_service = None

    def perform_destroy(self, instance):
        try:
            type(self).delete_service(instance)
        except DjangoValidationError as exc:
            s.raise_drf(exc)


class JobViewSet(
    ErrorsAsJSON, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, DestroyThroughService,
    viewsets.GenericViewSet,
):
    """Fine-tune, distil and file-classification jobs of yours (staff: everyone's), filtered by status, kind,
    sweep and dataset."""

    serializer_class = s.JobSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = JobFilter
    needs_redis = ("create",)  # the job queue: a 503 while Redis is down (jobs/outages.py; the schema says so)

    def get_queryset(self):
        return Job.objects.visible_to(self.request.user).select_related("dataset", "teacher")

    # A finished job goes with its metric points and files; its model stays. A queued or running one: 400.
    delete_service = staticmethod(delete_job)

    @docs.job_cancel
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        if job.is_finished:
            raise ValidationError({"status": f"the job has already {job.status}"})
        return Response(self.get_serializer(request_cancel(job)).data)

    @docs.job_output
    @action(detail=True, methods=["get"])
    def output(self, request, pk=None):
        """The CSV a finished classify job wrote: each row's label, probability and every class probability."""
        job = self.get_object()
        if not job.output_file:
            state = "is not a file classification" if job.kind != Job.Kind.CLASSIFY else f"is {job.status}"
            raise NotFound(f"no output: the job {state}")
        stored = job.output_file.name
        if signs_urls():  # S3: the bucket sends it, resumable; the web process only signs
            return HttpResponseRedirect(presigned_url(stored, Path(stored).name))
        return stream(
            request, file_chunks(stored), content_type="text/csv", filename=Path(stored).name,
            length=default_storage.size(stored),
        )  # fmt: skip

    @docs.job_metrics
    @action(
        detail=True, methods=["get"], pagination_class=None, filter_backends=[],
        renderer_classes=[JSONRenderer, BrowsableAPIRenderer, MetricsCSVRenderer],
    )  # fmt: skip
    def metrics(self, request, pk=None):
        """The job's metric points in order; as JSON, or a CSV with a column per metric (?format=csv)."""
        job = self.get_object()
        try:
            after = int(request.query_params.get("after", 0))
        except ValueError:
            raise ValidationError({"after": "must be an integer"}) from None
        points = MetricPoint.objects.filter(job=job, seq__gt=after).order_by("seq")
        response = Response(s.MetricPointSerializer(points, many=True).data)
        if request.accepted_renderer.format == MetricsCSVRenderer.format:
            response["Content-Disposition"] = f'attachment; filename="distillery-job-{job.pk}-metrics.csv"'
        return response


class SweepViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, DestroyThroughService,
    viewsets.GenericViewSet,
):
    """Jobs over a grid of hyperparameters (and base models or teachers), ranked by validation accuracy."""

    serializer_class = s.SweepSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = SweepFilter
    needs_redis = ("create",)

    def get_queryset(self):
        return Sweep.objects.visible_to(self.request.user).with_runs()

    # A finished sweep goes with its jobs and their metrics; their models stay. Otherwise 400.
    delete_service = staticmethod(delete_sweep)

    @docs.sweep_cancel
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel every job of the sweep that has not finished."""
        cancel_sweep(self.get_object())
        return Response(self.get_serializer(self.get_queryset().get(pk=pk)).data)


class ModelViewSet(
    ErrorsAsJSON, PromoteActions, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, viewsets.GenericViewSet,
):
    """Trained and imported models of yours (staff: everyone's), filtered by kind, teacher, dataset and whether
    promoted; promote and guard: PromoteActions."""

    serializer_class = s.ModelRecordSerializer
    http_method_names = ["get", "patch", "post", "delete", "head", "options"]
    filter_backends = [DjangoFilterBackend]
    filterset_class = ModelRecordFilter
    parser_classes = [JSONParser, parsers.MultiPartParser, parsers.FormParser]

    @docs.model_import
    def create(self, request):
        """Import a model from a zip (201: the record, plus `skipped`: the archive's files it left out). Only
        configs, tokenizer files and safetensors weights are taken; it is loaded once to check it."""
        upload = s.ModelUploadSerializer(data=request.data, context={"request": request})
        upload.is_valid(raise_exception=True)
        record = upload.save()
        body = self.get_serializer(record).data | {"skipped": record.skipped}
        return Response(body, status=201)

    def perform_update(self, serializer):
        if serializer.instance.owner_id != self.request.user.pk:
            raise ValidationError({"detail": "only the owner can change a model"})
        serializer.save()

    def perform_destroy(self, instance):
        """The owner deletes a model and its files; refused while it is promoted or jobs use it."""
        if instance.owner_id != self.request.user.pk:
            raise ValidationError({"detail": "only the owner can delete a model"})
        try:
            registry.delete_model(instance)
        except DjangoValidationError as exc:
            raise ValidationError({"detail": exc.messages[0]}) from None

    @docs.model_download
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The model's folder as a zip, streamed (on S3: a redirect to a presigned URL of the stored zip): weights,
        tokenizer and config that transformers' `from_pretrained` loads, distillery.json, the ONNX export it is
        served at, and a README."""
        return model_download(request, self.get_object())

    def get_queryset(self):
        return ModelRecord.objects.visible_to(self.request.user).select_related("produced_by")

    @docs.model_student
    @action(detail=True, methods=["get"])
    def student(self, request, pk=None):
        """What distilling this model makes, before launch: the student derived with `student_layers` layers
        (empty: every other), its parameters and size at fp32 and int8, and the teacher's parameters the launch
        form takes over (max_length, truncation, batch_size). From its config.json; no weights are loaded."""
        layers = s.StudentQuerySerializer(data=request.query_params)
        layers.is_valid(raise_exception=True)
        try:
            return Response(students.student_plan(self.get_object(), layers.validated_data.get("student_layers")))
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None

    @docs.model_compare
    @action(
        detail=False, methods=["get"], pagination_class=None,
        renderer_classes=[JSONRenderer, BrowsableAPIRenderer, ComparisonCSVRenderer, ComparisonPNGRenderer],
    )  # fmt: skip
    def compare(self, request):
        """Models side by side: the study's table, size, CPU latency and throughput (with ratios against the
        first model) and their training curves; as JSON, a CSV table or a PNG figure."""
        records = self._compared(request.query_params.getlist("ids"))
        response = Response(compare.comparison(records))
        fmt = request.accepted_renderer.format
        if fmt in FILE_FORMATS:
            name = "-".join(str(r.pk) for r in records)
            response["Content-Disposition"] = f'attachment; filename="distillery-compare-{name}.{fmt}"'
        return response

    @docs.model_compare_classify
    @action(
        detail=False, methods=["post"], url_path="compare/classify", pagination_class=None,
        throttle_classes=[ClassifyRateThrottle],
    )  # fmt: skip
    def compare_classify(self, request):
        """One text classified by several models side by side (`{ids, text}`; at most DISTILLERY_SERVING_CACHE
        models): each one's label, probabilities, whether the text was cut, and its time to answer once loaded."""
        payload = s.CompareTextSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        records = self._compared([payload.validated_data["ids"]])
        try:
            body = side_by_side(records, payload.validated_data["text"])
        except DjangoValidationError as exc:
            raise ValidationError({"ids": exc.messages}) from None
        return Response({"answers": body})

    @docs.model_compare_measure
    @action(detail=False, methods=["post"], url_path="compare/measure", pagination_class=None)
    def compare_measure(self, request):
        """Measure the models' CPU speed now, in this web process, the same way for all (`{ids}`): both precisions
        on the serving runtime, the same texts, interleaved rounds, medians; saved on each model (serving_speed)
        and answered as {model id: figures}. Seconds to a minute; 409 while another measurement runs here."""
        payload = s.CompareIdsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            measured = speed.measure(self._compared([payload.validated_data["ids"]]))
        except speed.Busy as exc:
            raise Conflict(str(exc)) from None
        return Response({str(k): v for k, v in measured.items()})

    def classify_cost(self, request) -> int:
        """What Try a text (the one throttled action) counts against the classify rate: one per model it names,
        up to the most it answers with."""
        ids = request.data.get("ids", "") if isinstance(request.data, dict) else ""
        named = len([part for part in str(ids).split(",") if part.strip()])
        return min(max(named, 1), settings.DISTILLERY_SERVING_CACHE)

    def _compared(self, values: list[str]) -> list[ModelRecord]:
        """The models named by ids values ("3,4"), in order; 400 for bad ids, 404 for ones not the user's."""
        try:
            return compare.load_models(self.request.user, compare.parse_ids(values))
        except DjangoValidationError as exc:
            raise ValidationError({"ids": exc.messages}) from None
        except ModelRecord.DoesNotExist as exc:
            raise NotFound(str(exc)) from None



class Conflict(APIException):
    status_code = 409
    default_detail = "the resource is busy"
    default_code = "conflict"


class ServiceUnavailable(APIException):
    status_code = 503
    default_detail = "the service is busy; retry shortly"
    default_code = "unavailable"


def not_found(request, exception):
    """Django's 404 for a URL that no route matches (config.urls.handler404): JSON under /api/, as every other
    answer of the API (an id that is not a number, /api/jobs/0.5/, got Django's HTML page), the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
