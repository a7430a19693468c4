"""The dashboard (datasets, jobs, sweeps and models in one place) and the launch form it posts.

Runs in: the web process.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from mlcore import catalogue
from mlcore.recipes import RECIPES

from ..datasets import services as datasets
from ..forms import (
    DatasetFolderForm,
    DatasetHubForm,
    DatasetUploadForm,
    JobForm,
    ModelImportForm,
)
from ..models import Dataset, Job, ModelRecord, Sweep
from ..registry import students
from ..registry.quality import with_test_summaries
from ..sweeps.services import create_sweep, sweep_runs
from ..training import queue_order
from ..training.launch import LaunchSpec, create_job
from .common import add_errors


@login_required
def dashboard(request, upload_form=None, job_form=None, folder_form=None, hub_form=None, model_form=None):
    user = request.user
    folders = datasets.dataset_folders()
    context = {
        "datasets": Dataset.objects.visible_to(user),
        "jobs": Job.objects.visible_to(user).select_related("dataset")[:50],
        "queues": queue_order.user_queues(user),
        "sweeps": [(sweep, sweep_runs(sweep)) for sweep in Sweep.objects.visible_to(user).with_runs()[:20]],
        "models": with_test_summaries(
            ModelRecord.objects.visible_to(user).select_related("dataset", "teacher", "owner")[:50]
        ),
        "upload_form": upload_form or DatasetUploadForm(),
        "folder_form": (folder_form or DatasetFolderForm(folders=folders)) if folders else None,
        "hub_form": (hub_form or DatasetHubForm()) if catalogue.hub_online() else None,
        "job_form": job_form or JobForm(user=user, initial=_launch_again(request)),
        "model_form": model_form or ModelImportForm(),
        "recipes": JobForm.recipe_listing(),
        "recipe_values": JobForm.recipe_values(),
        "recipe_summaries": {name: r.summary for name, r in RECIPES.items()},
        "catalogue": [entry for entry in catalogue.catalogue() if entry["available"]],
    }
    context["student_plan"] = _student_plan(context["job_form"], user)
    status = 400 if (upload_form or job_form or folder_form or hub_form or model_form) else 200
    return render(request, "jobs/dashboard.html", context, status=status)


def _launch_again(request) -> dict | None:
    """?again=<job id>: the launch form filled in as that job was (fine-tune and distil jobs of the user's);
    else ?kind=, ?dataset=, ?test_dataset=, ?teacher= preselect those fields (links from the dataset and model
    pages; an id the user cannot see matches no option and selects nothing)."""
    if "again" not in request.GET:
        chosen = {k: request.GET[k] for k in ("kind", "dataset", "test_dataset", "teacher") if request.GET.get(k)}
        teacher = _teacher(request.user, chosen.get("teacher"))
        if teacher is not None:  # a distillation reads its texts as its teacher did, in batches of its size
            chosen |= {name: str(value) for name, value in students.inherited_params(teacher).items()}
        return chosen or None
    jobs = Job.objects.visible_to(request.user).exclude(kind=Job.Kind.CLASSIFY)
    try:
        return JobForm.initial_from(jobs.get(pk=int(request.GET["again"])))
    except (ValueError, Job.DoesNotExist):
        raise Http404("no such job of yours to launch again") from None


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
            add_errors(form, exc)
        else:
            return redirect("sweep-detail", pk=sweep.pk) if grid else redirect("job-detail", pk=job.pk)
    return dashboard(request, job_form=form)


def _teacher(user, pk) -> ModelRecord | None:
    try:
        return ModelRecord.objects.visible_to(user).get(pk=int(pk))
    except (TypeError, ValueError, ModelRecord.DoesNotExist):
        return None


def _student_plan(form: JobForm, user) -> dict | None:
    """What the student of the form's teacher will be, with the form's student_layers, for the page to show
    before any script runs (the script updates it: launch_form.js); None without a teacher."""
    raw = form["teacher"].value()
    layers = form["student_layers"].value()
    teacher = _teacher(user, raw)
    if teacher is None:
        return None
    try:
        count = int(layers) if str(layers or "").strip() else None
        return students.student_plan(teacher, count)
    except (ValueError, ValidationError):  # a sweep of layer counts, or one the teacher cannot give
        return None
