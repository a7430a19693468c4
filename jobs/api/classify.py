"""The REST API's classify routes (DRF): one text or a list answered by the promoted model, a file classified as
a job, an explanation; and the catalogue of base models, defaults and recipes a launch can ask for.

Runs in: the web process.
"""

from __future__ import annotations

from adrf.views import APIView as AsyncAPIView
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import parsers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from mlcore import catalogue

from .. import observability
from ..registry import services as registry
from ..serving import engines
from ..serving.batch import create_classify_job
from ..serving.classify import Unavailable, answers, classify_texts
from ..training.launch import job_defaults, job_parameters, job_recipes
from . import apidocs as docs
from . import serializers as s
from .parsers import JSONParser
from .throttles import ClassifyRateThrottle
from .views import ServiceUnavailable


class ClassifyView(AsyncAPIView):
    """Classify one text (`text`) or a list (`texts`) with your promoted model, on CPU.

    Async: authentication, throttling and the promoted-model lookup run in one worker-thread hop (adrf), then
    the request awaits the micro-batching engine without holding a thread.
    """

    throttle_classes = [ClassifyRateThrottle]
    # JSON only, as the token fast path (api.fastpath) reads it: a form posted with a token would be parsed by
    # one path and refused by the other.
    parser_classes = [JSONParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.record = registry.promoted_model(request.user)

    @docs.classify
    async def post(self, request):
        payload = s.ClassifyRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if self.record is None:
            raise NotFound("no promoted model: promote one with POST /api/models/{id}/promote/")
        texts = payload.validated_data.get("texts") or [payload.validated_data["text"]]
        try:
            predictions = await classify_texts(self.record, texts, observability.API)
        except Unavailable as exc:
            raise ServiceUnavailable(str(exc)) from None
        body = answers(self.record, predictions)
        return Response(body[0] if "text" in payload.validated_data else body)


class ClassifyFileView(APIView):
    """Classify every row of an uploaded file as a job on the CPU queue; the finished job links to a CSV."""

    parser_classes = [parsers.MultiPartParser, parsers.FormParser]
    needs_redis = ("post",)

    @docs.classify_file
    def post(self, request):
        payload = s.ClassifyFileSerializer(data=request.data, context={"request": request})
        payload.is_valid(raise_exception=True)
        try:
            job = create_classify_job(
                request.user,
                payload.validated_data["file"],
                model=payload.validated_data.get("model"),
                text_column=payload.validated_data.get("text_column"),
            )
        except DjangoValidationError as exc:
            s.raise_drf(exc)
        return Response(s.JobSerializer(job, context={"request": request}).data, status=202)


class ExplainView(APIView):
    """Why your promoted model labels a text so: last-layer attention and per-token importance."""

    throttle_classes = [ClassifyRateThrottle]

    def classify_cost(self, request) -> int:
        return ClassifyRateThrottle.EXPLAIN_COST

    @docs.explain
    def post(self, request):
        payload = s.ExplainRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        record = registry.promoted_model(request.user)
        if record is None:
            raise NotFound("no promoted model: promote one with POST /api/models/{id}/promote/")
        label = payload.validated_data.get("label")
        if label is not None and label not in record.label_names:
            raise ValidationError({"label": [f"the model's labels are {', '.join(record.label_names)}"]})
        from mlcore.explain import explain  # imports torch: here, at the first explanation, not at web start

        explanation = explain(engines.explainer_for(record), payload.validated_data["text"], label=label)
        # Gradients need float weights: an int8-served model is explained with its fp32 weights.
        body = {**explanation.to_dict(), "model": record.pk, "explained_precision": "fp32"}
        return Response(body | {"serving_precision": record.serving_precision})


class CatalogueView(APIView):
    """Base models a fine-tune job can start from, the default hyperparameters of each job kind, every parameter
    with its type, default, range or choices and help, and the recipes (presets) a job or sweep can ask for."""

    @docs.catalogue
    def get(self, request):
        return Response(
            {
                "models": catalogue.catalogue(), "defaults": job_defaults(), "parameters": job_parameters(),
                "recipes": job_recipes(),
            }  # fmt: skip
        )
