"""Model pages: a model (with its promote guard), Compare, import, delete, download (promote: views.promotions).

Runs in: the web process.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ..api.downloads import model_download as download
from ..forms import (
    ModelImportForm,
)
from ..models import LabelIssues, ModelRecord
from ..registry import compare, guard, insight
from ..registry import services as registry
from ..registry.quality import test_summary, with_test_summaries
from .common import add_errors, delete_through
from .dashboard import dashboard
from .rows import rows_context


@login_required
def model_detail(request, pk):
    record = get_object_or_404(ModelRecord.objects.visible_to(request.user), pk=pk)
    # Teacher first (the reference the ratios are taken against), then its students, as far as the user sees them.
    visible = ModelRecord.objects.visible_to(request.user)
    if record.teacher_id and visible.filter(pk=record.teacher_id).exists():
        ids = [record.teacher_id, record.pk]
    else:
        students = visible.filter(teacher=record).order_by("created_at", "id").values_list("pk", flat=True)
        ids = [record.pk, *students[: compare.MAX_MODELS - 1]] if students else []
    context = {"model": record, "compare_ids": ",".join(map(str, ids)), "study": compare.study_rows([record])}
    context["test"] = test_summary(record.metrics)
    context["guard"] = guard.evaluate(record)  # the promote guard's rules, shown before its Promote button
    context |= {"calibration": insight.calibration(record), "agreement": insight.agreement(record)}
    context |= rows_context(request, record)
    context["label_issues"] = LabelIssues.objects.filter(model=record).first()
    return render(request, "jobs/model_detail.html", context)


@login_required
def compare_models(request):
    """Models side by side (?models=3&models=4 or ?models=3,4); without a choice, the list to choose from."""
    # Oldest first: a teacher comes before its students, so ticking both makes the teacher the reference.
    choices = with_test_summaries(ModelRecord.objects.visible_to(request.user).order_by("created_at", "id"))
    context = {"choices": choices, "max_models": compare.MAX_MODELS, "try_limit": settings.DISTILLERY_SERVING_CACHE}
    if not request.GET.getlist("models"):
        return render(request, "jobs/compare.html", context)
    try:
        records = compare.load_models(request.user, compare.parse_ids(request.GET.getlist("models")))
    except ValidationError as exc:
        return render(request, "jobs/compare.html", context | {"error": exc.messages[0]}, status=400)
    except ModelRecord.DoesNotExist as exc:
        raise Http404(str(exc)) from None
    selected = [r.pk for r in records]
    ids = ",".join(map(str, selected))
    context |= {"data": compare.comparison(records), "ids": ids, "selected": selected}
    context |= {"try_ids": ids if len(records) <= settings.DISTILLERY_SERVING_CACHE else ""}
    return render(request, "jobs/compare.html", context)


@login_required
@require_POST
def model_import(request):
    form = ModelImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            record, skipped = registry.import_model_archive(
                request.user, form.cleaned_data["file"], name=form.cleaned_data["name"]
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            left = f"; left out {len(skipped)} file{'s' if len(skipped) != 1 else ''} ({', '.join(skipped)})"
            messages.success(request, f"Imported {record.name}{left if skipped else ''}.")
            return redirect("model-detail", pk=record.pk)
    return dashboard(request, model_form=form)


@login_required
@require_POST
def model_delete(request, pk):
    record = get_object_or_404(ModelRecord.objects.filter(owner=request.user), pk=pk)
    done = f"Deleted {record.name} and its files."
    return delete_through(request, registry.delete_model, record, "model-detail", done)


@login_required
def model_download(request, pk):
    """The model's folder as a zip, streamed or on S3 redirected to (the same as GET /api/models/{id}/download/)."""
    return download(request, get_object_or_404(ModelRecord.objects.visible_to(request.user), pk=pk))
