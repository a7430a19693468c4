"""Dataset pages: upload (a held file and its columns), folder and hub imports, the dataset page and its preview.

Runs in: the web process.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from mlcore import catalogue
from mlcore.config import TrainConfig, field_range

from ..datasets import quality
from ..datasets import services as datasets
from ..datasets.held import held_file, hold_upload
from ..datasets.preview import PREVIEW_PAGE_WAIT_SECONDS, PreviewUnavailable, dataset_preview
from ..forms import (
    DatasetFolderForm,
    DatasetHubForm,
    DatasetUploadForm,
)
from ..models import Dataset
from .common import add_errors
from .dashboard import dashboard


@login_required
@require_POST
def dataset_upload(request):
    token = request.POST.get("held", "")
    held = held_file(request.user, token) if token and not request.FILES.get("file") else None
    form = DatasetUploadForm(request.POST, request.FILES, held=held)
    if not form.is_valid():
        return dashboard(request, upload_form=form)
    d = form.cleaned_data
    choice = {"text_column": d["text_column"] or None, "label_column": d["label_column"] or None}
    try:
        if d["file"]:
            dataset = datasets.create_dataset(request.user, d["name"], d["file"], **choice)
        else:
            dataset = datasets.create_dataset_from_held(request.user, d["name"], token, **choice)
    except ValidationError as exc:
        errors = exc.message_dict
        offered = errors.pop("columns", None) or (held.columns if held else None)
        if offered:  # the form comes back holding the file, its columns offered
            if d["file"]:
                token = hold_upload(request.user, d["file"], offered)
            kept = {k: v for k, v in choice.items() if v in offered}  # a typed name that is a column stays
            form = DatasetUploadForm({"name": d["name"], "held": token, **kept}, held=held_file(request.user, token))
            form.is_valid()
        add_errors(form, ValidationError(errors))
        return dashboard(request, upload_form=form)
    messages.success(request, f"Dataset “{dataset.name}” uploaded: {dataset.num_rows} rows.")
    return redirect("dataset-detail", pk=dataset.pk)


@login_required
@require_POST
def dataset_import(request):
    """Import a server folder (IMDB layout) as a dataset."""
    form = DatasetFolderForm(request.POST, folders=datasets.dataset_folders())
    return _new_dataset(request, form, "folder_form", "imported", lambda d: datasets.create_folder_dataset(
        request.user, d["name"], d["server_path"], d["split"]
    ))  # fmt: skip


@login_required
@require_POST
def dataset_hub_import(request):
    """Import a split of a hub dataset."""
    form = DatasetHubForm(request.POST)
    return _new_dataset(request, form, "hub_form", "imported", lambda d: datasets.create_hub_dataset(
        request.user, d["name"], d["hub_id"], d["split"]
    ))  # fmt: skip


def _new_dataset(request, form, form_name: str, verb: str, create):
    """Create a dataset from a valid form and show its preview; else the dashboard with the form's errors."""
    if form.is_valid():
        try:
            dataset = create(form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, f"Dataset “{dataset.name}” {verb}: {dataset.num_rows} rows.")
            return redirect("dataset-detail", pk=dataset.pk)
    return dashboard(request, **{form_name: form})


@login_required
def dataset_detail(request, pk):
    """A dataset's page: what its record holds at once, and its preview (first rows, token lengths) as soon as it
    is made; ?max_length= and ?model= choose how its texts are counted in tokens."""
    dataset = get_object_or_404(Dataset.objects.visible_to(request.user), pk=pk)
    context = _preview_context(request, dataset) | quality.page_context(dataset, request.user)
    return render(request, "jobs/dataset_detail.html", context, status=200 if context["pending"] else context["status"])


@login_required
def dataset_preview_part(request, pk):
    """The dataset page's preview section, which the page fetches again while it is being made (202 until then)."""
    dataset = get_object_or_404(Dataset.objects.visible_to(request.user), pk=pk)
    context = _preview_context(request, dataset)
    return render(request, "jobs/dataset_preview.html", context, status=context["status"])


def _preview_context(request, dataset) -> dict:
    """The dataset page's context: its label bars from the record, the preview when made within a moment (it is
    made in a helper process, jobs.datasets.preview), else `pending`; `status` as the preview part answers."""
    largest = max(dataset.label_counts.values(), default=0) or 1
    bounds = field_range(TrainConfig, "max_length")
    context = {
        "dataset": dataset, "catalogue": [entry for entry in catalogue.catalogue() if entry["available"]],
        "error": None, "preview": None, "pending": False, "status": 200,
        "max_length_bounds": (int(bounds.low), int(bounds.high)),
        "model": request.GET.get("model") or catalogue.BUNDLED_ID,
        "max_length": request.GET.get("max_length") or TrainConfig.max_length,
        "label_bars": [
            {"label": k, "count": v, "share": v / largest, "fraction": v / max(dataset.num_rows, 1)}
            for k, v in dataset.label_counts.items()
        ],
    }  # fmt: skip
    try:
        preview = dataset_preview(
            dataset, model_id=context["model"], max_length=int(context["max_length"]), wait=PREVIEW_PAGE_WAIT_SECONDS
        )
    except ValueError:
        context.update(error="max_length must be an integer", status=400)
    except ValidationError as exc:
        context.update(error="; ".join(exc.messages), status=400)
    except PreviewUnavailable as exc:
        context.update(error=str(exc), status=503)
    else:
        if preview is None:
            context.update(pending=True, status=202)
            return context
        peak = max((b["count"] for b in preview["tokens"]["histogram"]), default=0) or 1
        first_cut = next((b for b in preview["tokens"]["histogram"] if b["cut"]), None)
        for bucket in preview["tokens"]["histogram"]:
            bucket["share"] = bucket["count"] / peak  # bar height relative to the fullest bucket
            bucket["cut_start"] = bucket is first_cut  # the cut is drawn at its left edge, max_length
        context["preview"] = preview
    return context
