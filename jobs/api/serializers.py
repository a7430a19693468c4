"""The REST API's serializers: requests checked at the edge, then handed to the domain's services.

Runs in: the web process.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mlcore import recipes
from mlcore.config import DistillConfig, field_range

from ..datasets import services as datasets
from ..models import Dataset, Job, MetricPoint, ModelRecord, Sweep, WebhookSecret
from ..registry import insight
from ..registry.services import import_model_archive
from ..sweeps.services import create_sweep, sweep_runs
from ..training.launch import LaunchSpec, create_job
from .insight import AgreementSerializer, CalibrationSerializer
from .text_serializers import (  # noqa: F401  (the routes know them as serializers.X)
    IDS_SCHEMA,
    MAX_TEXT_CHARS,
    NOT_BLANK,
    ClassifyFileSerializer,
    ClassifyRequestSerializer,
    ClassifyTextSerializer,
    ClassifyTextsSerializer,
    CompareIdsSerializer,
    CompareTextSerializer,
    ExplainRequestSerializer,
    ExplainSerializer,
    IdsField,
    PredictionSerializer,
    StrictCharField,
    TextField,
)


def raise_drf(exc: DjangoValidationError):
    """Turn a service's ValidationError into DRF's, keeping the field messages."""
    detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
    raise serializers.ValidationError(detail)


FILE_HELP = "CSV, TSV or JSONL (or .gz of one)."
SERVER_PATH_HELP = (
    "Instead of a file: a folder in the IMDB layout under DISTILLERY_DATASET_ROOTS (GET /api/datasets/folders/)."
)
HUB_ID_HELP = "Instead of a file: a Hugging Face Hub dataset id such as stanfordnlp/imdb (needs internet)."


def _text(required: bool = False, max_length: int = 200, **kwargs) -> serializers.CharField:
    """A write-only string of a dataset import: a source (required, not blank) or an option (blank allowed)."""
    return serializers.CharField(
        write_only=True, required=required, allow_blank=not required, max_length=max_length, **kwargs
    )


class DatasetSerializer(serializers.ModelSerializer):
    """A dataset; created from exactly one of `file`, `server_path` or `hub_id` (the schema's DatasetUpload,
    DatasetFolderImport and DatasetHubImport)."""

    file = serializers.FileField(write_only=True, required=False, help_text=FILE_HELP)
    server_path = serializers.CharField(write_only=True, required=False, max_length=1000, help_text=SERVER_PATH_HELP)
    hub_id = serializers.CharField(write_only=True, required=False, max_length=200, help_text=HUB_ID_HELP)
    hub_config = _text(help_text="With hub_id: its config.")
    split = _text(help_text="With server_path or hub_id: e.g. train (hub_id's default).")
    text_column = serializers.CharField(required=False, allow_blank=True, max_length=200)
    label_column = serializers.CharField(required=False, allow_blank=True, max_length=200)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)

    class Meta:
        model = Dataset
        fields = [
            "id", "name", "file", "server_path", "hub_id", "hub_config", "split", "original_filename", "format",
            "text_column", "label_column", "num_rows", "labels", "label_counts", "size_bytes", "created_at",
        ]
        read_only_fields = [
            "original_filename", "format", "num_rows", "labels", "label_counts", "size_bytes", "created_at",
        ]

    SOURCES = ("file", "server_path", "hub_id")

    def validate(self, attrs):
        if sum(source in attrs for source in self.SOURCES) != 1:
            raise serializers.ValidationError({"file": ["send one of a file, a server_path or a hub_id"]})
        return attrs

    def create(self, validated_data):
        try:
            if "hub_id" in validated_data:
                return datasets.create_hub_dataset(
                    self.context["request"].user, validated_data.get("name", ""), validated_data["hub_id"],
                    validated_data.get("split") or "train", config=validated_data.get("hub_config", ""),
                    text_column=validated_data.get("text_column"), label_column=validated_data.get("label_column"),
                )  # fmt: skip
            if "server_path" in validated_data:
                return datasets.create_folder_dataset(
                    self.context["request"].user, validated_data.get("name", ""), validated_data["server_path"],
                    validated_data.get("split", ""),
                )  # fmt: skip
            return datasets.create_dataset(
                self.context["request"].user,
                validated_data.get("name", ""),
                validated_data["file"],
                text_column=validated_data.get("text_column"),
                label_column=validated_data.get("label_column"),
            )
        except DjangoValidationError as exc:
            raise_drf(exc)


# The request bodies of POST /api/datasets/, one per source, for the schema (DatasetSerializer reads the request).


class DatasetUploadSerializer(serializers.Serializer):
    """A dataset from a file, sent as multipart/form-data."""

    name = _text()
    file = serializers.FileField(help_text=FILE_HELP)
    text_column = _text()
    label_column = _text()


class DatasetFolderImportSerializer(serializers.Serializer):
    """A dataset from a server folder in the IMDB layout."""

    name = _text()
    server_path = _text(required=True, max_length=1000, help_text=SERVER_PATH_HELP)
    split = _text(help_text="e.g. train; none for a folder that is one split.")


class DatasetHubImportSerializer(serializers.Serializer):
    """A dataset from the Hugging Face Hub (needs internet)."""

    name = _text()
    hub_id = _text(required=True, help_text=HUB_ID_HELP)
    hub_config = _text(help_text="Its config, if it has several.")
    split = _text(help_text="Default: train.")
    text_column = _text()
    label_column = _text()


RECIPE_HELP = "a preset that fills in the params left out: " + "; ".join(
    f"{name}: {r.summary}" for name, r in recipes.RECIPES.items()
)


TEST_DATASET_HELP = (
    "a dataset of yours to run the final test on (an official test set, e.g. IMDB's test folder); its labels must be "
    "among the training dataset's. Without it test_fraction of the training data is held out."
)


WEBHOOK_HELP = (
    "an http(s) URL POSTed the job's final status when it ends (JSON as its websocket status message, with "
    "test_accuracy), signed with your webhook secret (GET /api/account/webhook-secret/): X-Distillery-Signature: "
    "sha256=HMAC-SHA256(secret, X-Distillery-Timestamp + '.' + body); public addresses only"
)


class StudentLayersField(serializers.IntegerField):
    """student_layers as the config bounds it: the range in the schema (minimum, maximum), and a value outside
    it refused in the config's words, as the launch form and a launch refuse it."""

    bounds = field_range(DistillConfig, "student_layers")

    def __init__(self, **kwargs):
        super().__init__(min_value=int(self.bounds.low), max_value=int(self.bounds.high), **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            self.bounds.check("student_layers", value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value


class StudentQuerySerializer(serializers.Serializer):
    student_layers = StudentLayersField(
        required=False, allow_null=True, help_text="Layers the derived student keeps, at most the teacher's; empty: "
        "every other.",
    )  # fmt: skip


class LaunchFields(serializers.Serializer):
    """What a job and a sweep are launched with (training.launch.LaunchSpec). Only the requesting user's own
    datasets and models can be referenced ("does not exist" otherwise)."""

    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.none())
    test_dataset = serializers.PrimaryKeyRelatedField(
        queryset=Dataset.objects.none(), required=False, allow_null=True, help_text=TEST_DATASET_HELP
    )
    base_model = serializers.CharField(required=False, allow_blank=True, max_length=300)
    teacher = serializers.PrimaryKeyRelatedField(queryset=ModelRecord.objects.none(), required=False, allow_null=True)
    params = serializers.DictField(required=False, default=dict)
    recipe = serializers.ChoiceField(
        choices=list(recipes.RECIPES), required=False, allow_blank=True, write_only=True, help_text=RECIPE_HELP
    )
    webhook_url = serializers.URLField(
        required=False, allow_blank=True, max_length=500, help_text=WEBHOOK_HELP,
        validators=[URLValidator(schemes=["http", "https"])],
    )  # fmt: skip

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["dataset"].queryset = fields["test_dataset"].queryset = Dataset.objects.visible_to(request.user)
            fields["teacher"].queryset = ModelRecord.objects.visible_to(request.user)
            if "base_record" in fields:
                fields["base_record"].queryset = ModelRecord.objects.visible_to(request.user)
        return fields


class JobSerializer(LaunchFields, serializers.ModelSerializer):
    base_record = serializers.PrimaryKeyRelatedField(
        queryset=ModelRecord.objects.none(), required=False, allow_null=True,
        help_text="Fine-tune: one of your stored models (its id) to start from, instead of base_model; its labels "
        "must be the dataset's.",
    )  # fmt: skip

    class Meta:
        model = Job
        fields = [
            "id", "kind", "dataset", "test_dataset", "base_model", "base_record", "teacher", "params", "status",
            "progress", "phase", "error", "error_detail", "cancel_requested", "result_model", "worker", "created_at",
            "started_at", "finished_at", "model", "input_filename", "output", "sweep", "recipe", "eta_seconds",
            "jobs_ahead", "webhook_url", "priority",
        ]
        read_only_fields = [
            "status", "progress", "phase", "error", "cancel_requested", "result_model", "worker",
            "created_at", "started_at", "finished_at", "model", "input_filename", "sweep",
        ]

    output = serializers.SerializerMethodField(help_text="Where a finished classify job's CSV is downloaded.")
    eta_seconds = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Seconds of training left at the pace so far (a running job's)."
    )
    jobs_ahead = serializers.SerializerMethodField(
        help_text="Queued jobs before this queued one on its queue (GET /api/jobs/{id}/ only; null elsewhere)."
    )

    priority = serializers.IntegerField(
        required=False, default=0, min_value=Job.PRIORITIES[0], max_value=Job.PRIORITIES[-1],
        help_text="Higher starts first on its queue; above 0 for staff only. Change it while queued with POST "
        "/api/jobs/{id}/priority/.",
    )  # fmt: skip
    error_detail = serializers.SerializerMethodField(
        help_text="A failed job's traceback, for staff only (it names server paths); null for everyone else."
    )

    def get_error_detail(self, obj) -> str | None:
        request = self.context.get("request")
        return obj.error_detail if request is not None and request.user.is_staff else None

    def get_jobs_ahead(self, obj) -> int | None:
        view = self.context.get("view")
        return obj.jobs_ahead() if getattr(view, "action", None) == "retrieve" else None

    def get_output(self, obj) -> str | None:
        if not obj.output_file:
            return None
        url = f"/api/jobs/{obj.pk}/output/"
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url

    def create(self, validated_data):
        spec, _ = LaunchSpec.take(validated_data)
        try:
            return create_job(self.context["request"].user, spec)
        except DjangoValidationError as exc:
            raise_drf(exc)


class SweepSerializer(LaunchFields, serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=list(Job.CONFIGS))
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    params = serializers.DictField(required=False, default=dict, help_text="What every job shares.")
    grid = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(), allow_empty=False), required=False,
        help_text="{parameter: [values]}: one job per combination; base_model (fine-tune) and teacher (distil, "
        "model ids) may be swept too. In a search's answer: the value each trial drew, in job order.",
    )  # fmt: skip
    search = serializers.JSONField(
        required=False, allow_null=True,
        help_text='Instead of a grid, a random search: {"space": {parameter: {"uniform"|"log_uniform"|"int": '
        '[low, high]} or {"choice": [values]}}, "trials": n (default 8), "seed": s (default 0)}.',
    )  # fmt: skip
    runs = serializers.SerializerMethodField()

    class Meta:
        model = Sweep
        fields = [
            "id", "name", "kind", "dataset", "test_dataset", "base_model", "teacher", "params", "grid", "search",
            "recipe", "webhook_url", "created_at", "runs",
        ]  # fmt: skip
        read_only_fields = ["created_at"]

    def get_runs(self, obj) -> dict:
        """{runs: [{job, status, progress, values, model, valid_accuracy, test_accuracy, avg_train_loss, error}],
        best: the job with the best validation accuracy, best_valid_accuracy, counts: jobs per status, finished}"""
        return sweep_runs(obj)

    def create(self, validated_data):
        spec, sweep_data = LaunchSpec.take(validated_data)
        try:
            sweep = create_sweep(self.context["request"].user, spec, **sweep_data)
        except DjangoValidationError as exc:
            raise_drf(exc)
        return Sweep.objects.with_runs().get(pk=sweep.pk)


class MetricPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetricPoint
        fields = ["seq", "step", "kind", "values", "created_at"]


class ModelRecordSerializer(serializers.ModelSerializer):
    job = serializers.SerializerMethodField()
    calibration = serializers.SerializerMethodField()
    agreement = serializers.SerializerMethodField()

    class Meta:
        model = ModelRecord
        fields = [
            "id", "name", "kind", "base_model", "teacher", "dataset", "job", "params", "metrics", "label_names",
            "num_parameters", "size_bytes", "serving_precision", "is_promoted", "promoted_at", "created_at",
            "temperature", "calibration", "agreement",
        ]
        # PATCH may rename a model or choose how it is served; everything else is its history.
        read_only_fields = [f for f in fields if f not in ("name", "serving_precision")]

    def get_job(self, obj) -> int | None:
        job = getattr(obj, "produced_by", None)
        return job.pk if job else None

    @extend_schema_field(CalibrationSerializer(allow_null=True))
    def get_calibration(self, obj) -> dict | None:
        return insight.calibration(obj)

    @extend_schema_field(AgreementSerializer(allow_null=True))
    def get_agreement(self, obj) -> dict | None:
        return insight.agreement(obj)


class ModelUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A zip of a model folder: a Distillery download, or any HF sequence-classification folder with "
        "config.json, tokenizer files and safetensors weights (at the zip's top or in one folder)."
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Default: the zip's name.")

    def create(self, validated_data):
        try:
            record, skipped = import_model_archive(
                self.context["request"].user, validated_data["file"], name=validated_data.get("name", "")
            )
        except DjangoValidationError as exc:
            raise_drf(exc)
        record.skipped = skipped
        return record


class DatasetFolderSerializer(serializers.Serializer):
    """A server folder POST /api/datasets/ can import (server_path), with the splits it holds."""

    path = serializers.CharField()
    splits = serializers.ListField(child=serializers.CharField(), help_text="[] when the folder is one split.")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as Authorization: Token <token>.")


class WebhookSecretSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookSecret
        fields = read_only_fields = ["secret", "created_at"]
        extra_kwargs = {"secret": {"help_text": "The key of your webhooks' X-Distillery-Signature (not your token)."}}
