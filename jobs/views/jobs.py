"""Job and sweep pages: the live job page, cancel and delete.

Runs in: the web process.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ..models import Job, Sweep
from ..registry import compare
from ..sweeps.services import cancel_sweep, delete_sweep, sweep_runs
from ..training.hyperparameters import parameter_groups
from ..training.launch import delete_job, request_cancel
from .common import delete_through


@login_required
def job_detail(request, pk):
    job = get_object_or_404(
        Job.objects.visible_to(request.user).select_related("dataset", "test_dataset", "result_model", "sweep"), pk=pk
    )
    changed, defaults = parameter_groups(job)
    context = {"job": job, "jobs_ahead": job.jobs_ahead(), "params_changed": changed, "params_default": defaults}
    return render(request, "jobs/job_detail.html", context)


@login_required
@require_POST
def job_cancel(request, pk):
    job = get_object_or_404(Job.objects.visible_to(request.user), pk=pk)
    if not job.is_finished:
        request_cancel(job)
        messages.info(request, f"Cancel requested for job #{job.pk}.")
    return redirect("job-detail", pk=job.pk)


@login_required
@require_POST
def job_delete(request, pk):
    job = get_object_or_404(Job.objects.visible_to(request.user), pk=pk)
    return delete_through(request, delete_job, job, "job-detail", f"Deleted job #{pk} and its metrics.")


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
    return delete_through(request, delete_sweep, sweep, "sweep-detail", f"Deleted {sweep.name} and its jobs.")
