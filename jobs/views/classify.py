"""The classify page: one text, or a file classified by a worker.

Runs in: the web process.
"""

from __future__ import annotations

from math import ceil

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import observability
from ..api.throttles import ClassifyRateThrottle
from ..forms import (
    ClassifyFileForm,
    ClassifyForm,
)
from ..registry import services as registry
from ..registry.quality import test_summary
from ..serving import engines
from ..serving.batch import create_classify_job
from ..serving.classify import certainty
from .common import add_errors


@login_required
def classify(request):
    record = registry.promoted_model(request.user)
    form = ClassifyForm(request.POST or None)
    prediction = None
    if request.method == "POST" and form.is_valid() and record is not None:
        wait = ClassifyRateThrottle().charge(request.user.pk)  # the API's classify rate, one count for both
        if wait is not None:
            form.add_error(None, f"You have classified as often as your rate allows; try again in {ceil(wait)} s.")
            context = {"form": form, "model": record, "prediction": None, "file_form": ClassifyFileForm()}
            return render(request, "jobs/classify.html", context, status=429)
        with observability.classify_timer(observability.PAGE):
            prediction = engines.engine_for(record).predict([form.cleaned_data["text"]])[0]
        prediction.ranked = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])
        prediction.certainty = certainty(prediction.probabilities)
    context = {"form": form, "model": record, "prediction": prediction, "file_form": ClassifyFileForm()}
    context["test"] = test_summary(record.metrics) if record is not None else None
    return render(request, "jobs/classify.html", context)


@login_required
@require_POST
def classify_file(request):
    """Start a batch classification of an uploaded file; its job page shows progress and the CSV link."""
    form = ClassifyFileForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            job = create_classify_job(
                request.user, form.cleaned_data["file"], text_column=form.cleaned_data["text_column"]
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            return redirect("job-detail", pk=job.pk)
    record = registry.promoted_model(request.user)
    context = {"form": ClassifyForm(), "model": record, "prediction": None, "file_form": form}
    return render(request, "jobs/classify.html", context, status=400)
