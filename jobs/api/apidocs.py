"""What each operation of the REST API takes and answers, for the OpenAPI schema (GET /api/schema/): the views'
@extend_schema decorators, kept here so that the views read as what they do. Refusals every operation of a kind
can give (400, 401, 403, 404, 413, 415, 429) are added by schema.AutoSchema; these name the rest.

Runs in: the web process (GET /api/schema/) and `manage.py spectacular`.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)

from mlcore import catalogue as models_catalogue
from mlcore.config import TrainConfig, field_range

from ..datasets.preview import PREVIEW_API_WAIT_SECONDS, PREVIEW_MAX_ROWS, PREVIEW_ROWS
from ..registry.compare import MAX_MODELS
from . import serializers as s
from .schedule import SchedulePreviewSerializer, ScheduleQuerySerializer
from .schema import error, invalid

MAX_LENGTH = field_range(TrainConfig, "max_length")
NO_PROMOTED_MODEL = error("You have no promoted model: promote one with POST /api/models/{id}/promote/.")

# Exactly one source: an uploaded file (multipart), or a server folder or a hub dataset (JSON or a form). The view
# takes a folder or hub id in multipart too; the schema keeps multipart for files, which is what it is for.
_IMPORTS = PolymorphicProxySerializer(
    "DatasetImport", [s.DatasetFolderImportSerializer, s.DatasetHubImportSerializer], resource_type_field_name=None
)
datasets = extend_schema_view(
    create=extend_schema(
        request={
            "multipart/form-data": s.DatasetUploadSerializer, "application/json": _IMPORTS,
            "application/x-www-form-urlencoded": _IMPORTS,
        },
        responses={201: s.DatasetSerializer},
    ),
)  # fmt: skip

dataset_folders = extend_schema(responses=s.DatasetFolderSerializer(many=True))

dataset_preview = extend_schema(
    parameters=[
        OpenApiParameter(
            "max_length", {"type": "integer", "minimum": MAX_LENGTH.low, "maximum": MAX_LENGTH.high},
            description=f"tokens a job would keep (default {TrainConfig.max_length}, {MAX_LENGTH.describe()})",
        ),
        OpenApiParameter(
            "model", str, enum=[m["id"] for m in models_catalogue.catalogue()],
            description="catalogue id whose tokenizer counts (default: bundled); 400 if this server lacks it",
        ),
        OpenApiParameter(
            "rows", {"type": "integer", "minimum": 0, "maximum": PREVIEW_MAX_ROWS},
            description=f"sample rows (default {PREVIEW_ROWS})",
        ),
    ],
    responses={
        200: dict,
        503: error(
            f"The preview is still being made after {PREVIEW_API_WAIT_SECONDS} s (a large file), or the process "
            "making it stopped: ask again shortly."
        ),
    },
)  # fmt: skip

job_cancel = extend_schema(
    request=None, responses={200: s.JobSerializer, 400: invalid("The job has already finished.")}
)

job_output = extend_schema(
    responses={
        (200, "text/csv"): bytes,
        302: OpenApiResponse(description="Object storage (S3): a redirect to a presigned URL of the CSV."),
        404: error("No such job of yours, or it has no output (not a file classification, or not finished)."),
    }
)

job_metrics = extend_schema(
    parameters=[
        OpenApiParameter("after", int, description="return points with seq greater than this (default 0)"),
        OpenApiParameter("format", str, enum=["json", "csv"], description="or send an Accept header"),
    ],
    responses={(200, "application/json"): s.MetricPointSerializer(many=True), (200, "text/csv"): bytes},
)

sweep_cancel = extend_schema(request=None, responses=s.SweepSerializer)

model_import = extend_schema(
    request={"multipart/form-data": s.ModelUploadSerializer}, responses={201: s.ModelRecordSerializer}
)

model_download = extend_schema(
    responses={
        (200, "application/zip"): bytes,
        302: OpenApiResponse(description="Object storage (S3): a redirect to a presigned URL of the zip."),
    }
)

dataset_schedule = extend_schema(
    parameters=[ScheduleQuerySerializer],
    responses={200: SchedulePreviewSerializer, 400: invalid("A value out of its range, or an unknown recipe.")},
)

model_student = extend_schema(
    parameters=[s.StudentQuerySerializer],
    responses={200: dict, 400: invalid("student_layers out of range, or a teacher no student can be derived from.")},
)

model_compare = extend_schema(
    parameters=[
        OpenApiParameter(
            "ids", s.IDS_SCHEMA, required=True,
            description=f"model ids, comma-separated (or repeated), at most {MAX_MODELS}; ratios are against the first",
        ),
        OpenApiParameter("format", str, enum=["json", "csv", "png"], description="or send an Accept header"),
    ],
    responses={
        (200, "application/json"): dict, (200, "text/csv"): bytes, (200, "image/png"): bytes,
        404: error("A model id that is not one of yours, or a format other than json, csv or png."),
    },
)  # fmt: skip

model_compare_measure = extend_schema(
    request=s.CompareIdsSerializer,
    responses={
        200: dict, 404: error("A model id that is not one you can see."),
        409: error("Another speed measurement is running in this web process; try again in a minute."),
    },
)  # fmt: skip

model_compare_classify = extend_schema(
    request=s.CompareTextSerializer, responses={200: dict, 404: error("A model id that is not one of yours.")}
)

classify = extend_schema(
    request=PolymorphicProxySerializer(
        "Classify", [s.ClassifyTextSerializer, s.ClassifyTextsSerializer], resource_type_field_name=None
    ),
    responses={
        200: OpenApiResponse(
            PolymorphicProxySerializer(
                "Classification", [s.PredictionSerializer, s.PredictionSerializer(many=True)],
                resource_type_field_name=None, many=False,
            ),
            "One prediction for `text`, a list in order for `texts`.",
        ),
        404: NO_PROMOTED_MODEL,
        503: error(
            "The model cannot take the request now (its queue is full, or it is being replaced), or Redis, which "
            "counts the rate, cannot be reached: retry (Retry-After says when, for the latter)."
        ),
    },
)  # fmt: skip

classify_file = extend_schema(
    request={"multipart/form-data": s.ClassifyFileSerializer}, responses={202: s.JobSerializer}
)

explain = extend_schema(request=s.ExplainRequestSerializer, responses={200: dict, 404: NO_PROMOTED_MODEL})

token = extend_schema(
    auth=[],
    responses={
        200: s.TokenSerializer,
        429: error("Too many failed logins for this username or address (django-axes); try later."),
    },
)

catalogue = extend_schema(responses=dict)
