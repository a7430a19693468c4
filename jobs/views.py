"""The dashboard: datasets, jobs and models in one place; the live job page; the classify page.

Runs in: the web process.
"""

from __future__ import annotations

from math import ceil

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from mlcore import catalogue
from mlcore.config import TrainConfig, field_range
from mlcore.recipes import RECIPES

from . import accounts
from .api.downloads import model_download as download
from .api.throttles import ClassifyRateThrottle
from .datasets import services as datasets
from .datasets.held import held_columns, hold_upload
from .datasets.preview import PREVIEW_PAGE_WAIT_SECONDS, PreviewUnavailable, dataset_preview
from .forms import (
    ClassifyFileForm,
    ClassifyForm,
    DatasetFolderForm,
    DatasetHubForm,
    DatasetUploadForm,
    JobForm,
    ModelImportForm,
)
from .health import health_status
from .models import Dataset, Job, ModelRecord, Sweep
from .registry import compare
from .registry import services as registry
from .serving import engines
from .serving.batch import create_classify_job
from .sweeps.services import cancel_sweep, create_sweep, delete_sweep, sweep_runs
from .training.launch import LaunchSpec, create_job, delete_job, request_cancel


def _add_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
def dashboard(request, upload_form=None, job_form=None, folder_form=None, hub_form=None, model_form=None):
    user = request.user
    folders = datasets.dataset_folders()
    context = {
        "datasets": Dataset.objects.visible_to(user),
        "jobs": Job.objects.visible_to(user).select_related("dataset")[:50],
        "sweeps": [(sweep, sweep_runs(sweep)) for sweep in Sweep.objects.visible_to(user).with_runs()[:20]],
        "models": ModelRecord.objects.visible_to(user).select_related("dataset", "teacher")[:50],
        "upload_form": upload_form or DatasetUploadForm(),
        "folder_form": (folder_form or DatasetFolderForm(folders=folders)) if folders else None,
        "hub_form": (hub_form or DatasetHubForm()) if catalogue.hub_online() else None,
        "job_form": job_form or JobForm(user=user, initial=_launch_again(request)),
        "model_form": model_form or ModelImportForm(),
        "recipes": list(RECIPES.values()),
        "recipe_values": JobForm.recipe_values(),
        "recipe_summaries": {name: r.summary for name, r in RECIPES.items()},
    }
    status = 400 if (upload_form or job_form or folder_form or hub_form or model_form) else 200
    return render(request, "jobs/dashboard.html", context, status=status)


def _launch_again(request) -> dict | None:
    """?again=<job id>: the launch form filled in as that job was (fine-tune and distil jobs of the user's);
    else ?kind=, ?dataset=, ?test_dataset=, ?teacher= preselect those fields (links from the dataset and model
    pages; an id the user cannot see matches no option and selects nothing)."""
    if "again" not in request.GET:
        chosen = {k: request.GET[k] for k in ("kind", "dataset", "test_dataset", "teacher") if request.GET.get(k)}
        return chosen or None
    jobs = Job.objects.visible_to(request.user).exclude(kind=Job.Kind.CLASSIFY)
    try:
        return JobForm.initial_from(jobs.get(pk=int(request.GET["again"])))
    except (ValueError, Job.DoesNotExist):
        raise Http404("no such job of yours to launch again") from None


@login_required
@require_POST
def dataset_upload(request):
    held = request.POST.get("held", "")
    columns = held_columns(request.user, held) if held and not request.FILES.get("file") else None
    form = DatasetUploadForm(request.POST, request.FILES, columns=columns)
    if not form.is_valid():
        return dashboard(request, upload_form=form)
    d = form.cleaned_data
    choice = {"text_column": d["text_column"] or None, "label_column": d["label_column"] or None}
    try:
        if d["file"]:
            dataset = datasets.create_dataset(request.user, d["name"], d["file"], **choice)
        else:
            dataset = datasets.create_dataset_from_held(request.user, d["name"], held, **choice)
    except ValidationError as exc:
        errors = exc.message_dict
        offered = errors.pop("columns", None) or columns
        if offered:  # the form comes back holding the file, its columns offered
            if d["file"]:
                held = hold_upload(request.user, d["file"], offered)
            kept = {k: v for k, v in choice.items() if v in offered}  # a typed name that is a column stays
            form = DatasetUploadForm({"name": d["name"], "held": held, **kept}, columns=offered)
            form.is_valid()
        _add_errors(form, ValidationError(errors))
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
            _add_errors(form, exc)
        else:
            messages.success(request, f"Dataset “{dataset.name}” {verb}: {dataset.num_rows} rows.")
            return redirect("dataset-detail", pk=dataset.pk)
    return dashboard(request, **{form_name: form})


@login_required
def dataset_detail(request, pk):
    """A dataset's page: what its record holds at once, and its preview (first rows, token lengths) as soon as it
    is made; ?max_length= and ?model= choose how its texts are counted in tokens."""
    dataset = get_object_or_404(Dataset.objects.visible_to(request.user), pk=pk)
    context = _preview_context(request, dataset)
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
        for bucket in preview["tokens"]["histogram"]:
            bucket["share"] = bucket["count"] / peak  # bar height relative to the fullest bucket
        context["preview"] = preview
    return context


@login_required
@require_POST
def job_create(request):
    """Launch one job, or a sweep when a field holds several values."""
    form = JobForm(request.POST, user=request.user)
    if form.is_valid():
        params, grid = form.params(), form.grid()
        spec = LaunchSpec(
            kind=form.cleaned_data["kind"], dataset=form.cleaned_data["dataset"],
            test_dataset=form.cleaned_data["test_dataset"], webhook_url=form.cleaned_data["webhook_url"],
            base_model=params.pop("base_model", ""), teacher=form.cleaned_data["teacher"], params=params,
        )  # fmt: skip
        try:
            if grid:
                sweep = create_sweep(request.user, spec, grid=grid)
            else:
                job = create_job(request.user, spec)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return redirect("sweep-detail", pk=sweep.pk) if grid else redirect("job-detail", pk=job.pk)
    return dashboard(request, job_form=form)


@login_required
def job_detail(request, pk):
    job = get_object_or_404(
        Job.objects.visible_to(request.user).select_related("dataset", "test_dataset", "result_model", "sweep"), pk=pk
    )
    return render(request, "jobs/job_detail.html", {"job": job, "jobs_ahead": job.jobs_ahead()})


@login_required
@require_POST
def job_cancel(request, pk):
    job = get_object_or_404(Job.objects.visible_to(request.user), pk=pk)
    if not job.is_finished:
        request_cancel(job)
        messages.info(request, f"Cancel requested for job #{job.pk}.")
    return redirect("job-detail", pk=job.pk)


@login_required
def sweep_detail(request, pk):
    sweep = get_object_or_404(
        Sweep.objects.visible_to(request.user).with_runs().select_related("dataset", "test_dataset", "teacher"), pk=pk
    )
    summary = sweep_runs(sweep)
    ranked = sorted((r for r in summary["runs"] if r["model"]), key=lambda r: -(r["valid_accuracy"] or 0))
    best = next((job.result_model for job in sweep.jobs.all() if job.pk == summary["best"]), None)
    context = {
        "sweep": sweep, "summary": summary, "axes": list(sweep.grid), "best_model": best,
        "compare_ids": ",".join(str(r["model"]) for r in ranked[: compare.MAX_MODELS]),
    }  # fmt: skip
    return render(request, "jobs/sweep_detail.html", context)


@login_required
@require_POST
def sweep_cancel(request, pk):
    sweep = get_object_or_404(Sweep.objects.visible_to(request.user), pk=pk)
    cancelled = cancel_sweep(sweep)
    messages.info(request, f"Cancel requested for {len(cancelled)} job{'s' if len(cancelled) != 1 else ''}.")
    return redirect("sweep-detail", pk=pk)


@login_required
@require_POST
def sweep_delete(request, pk):
    sweep = get_object_or_404(Sweep.objects.visible_to(request.user), pk=pk)
    return _delete(request, delete_sweep, sweep, "sweep-detail", f"Deleted {sweep.name} and its jobs.")


@login_required
@require_POST
def job_delete(request, pk):
    job = get_object_or_404(Job.objects.visible_to(request.user), pk=pk)
    return _delete(request, delete_job, job, "job-detail", f"Deleted job #{pk} and its metrics.")


def _delete(request, delete, obj, page: str, done: str):
    """Delete through a service; back to the object's page with the reason if it refuses, else the dashboard."""
    try:
        delete(obj)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect(page, pk=obj.pk)
    messages.success(request, done)
    return redirect("dashboard")


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
    return render(request, "jobs/model_detail.html", {"model": record, "compare_ids": ",".join(map(str, ids))})


@login_required
def compare_models(request):
    """Models side by side (?models=3&models=4 or ?models=3,4); without a choice, the list to choose from."""
    # Oldest first: a teacher comes before its students, so ticking both makes the teacher the reference.
    choices = ModelRecord.objects.visible_to(request.user).order_by("created_at", "id")
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
def model_promote(request, pk):
    record = get_object_or_404(ModelRecord.objects.filter(owner=request.user), pk=pk)
    registry.promote(record)
    messages.success(request, f"{record.name} now serves your classify requests.")
    back = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure())
    return redirect(back if allowed else "dashboard")  # never to another site


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
            _add_errors(form, exc)
        else:
            left = f"; left out {len(skipped)} file{'s' if len(skipped) != 1 else ''} ({', '.join(skipped)})"
            messages.success(request, f"Imported {record.name}{left if skipped else ''}.")
            return redirect("model-detail", pk=record.pk)
    return dashboard(request, model_form=form)


@login_required
@require_POST
def model_delete(request, pk):
    record = get_object_or_404(ModelRecord.objects.filter(owner=request.user), pk=pk)
    return _delete(request, registry.delete_model, record, "model-detail", f"Deleted {record.name} and its files.")


@login_required
def model_download(request, pk):
    """The model's folder as a streamed zip (the same as GET /api/models/{id}/download/)."""
    return download(request, get_object_or_404(ModelRecord.objects.visible_to(request.user), pk=pk))


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
        prediction = engines.engine_for(record).predict([form.cleaned_data["text"]])[0]
        prediction.ranked = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])
    context = {"form": form, "model": record, "prediction": prediction, "file_form": ClassifyFileForm()}
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
            _add_errors(form, exc)
        else:
            return redirect("job-detail", pk=job.pk)
    record = registry.promoted_model(request.user)
    context = {"form": ClassifyForm(), "model": record, "prediction": None, "file_form": form}
    return render(request, "jobs/classify.html", context, status=400)


@login_required
def api_token(request):
    """Your API token, for scripts (Authorization: Token <key>); POST makes a new one, and the old one stops
    working at once (the fast path forgets it through jobs.signals)."""
    if request.method == "POST":
        accounts.new_api_token(request.user)
        messages.success(request, "A new token: the old one no longer works.")
        return redirect("api-token-page")
    context = {"token": accounts.api_token(request.user), "webhook_secret": accounts.webhook_secret(request.user)}
    return render(request, "jobs/api_token.html", context)


@login_required
@require_POST
def webhook_secret_rotate(request):
    """Make a new webhook secret (shown on the account page): deliveries from now on are signed with it."""
    accounts.new_webhook_secret(request.user)
    messages.success(request, "A new webhook secret: update your receivers, which now get signatures made with it.")
    return redirect("api-token-page")


def healthz(request):
    body, status = health_status()
    return JsonResponse(body, status=status)
