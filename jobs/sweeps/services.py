"""Sweeps: one training job per combination of a grid, or per trial of a random search, queued all or none;
their runs ranked by validation accuracy; cancelled or deleted together.

Runs in: the web process.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from mlcore.search import SearchError, sample

from ..models import Job, ModelRecord, Sweep
from ..quota import check_room
from ..training import webhooks
from ..training.launch import LaunchSpec, check_active_jobs, create_job, delete_job, request_cancel

# What a grid may vary besides the job kind's hyperparameters.
SWEEP_AXES = {Job.Kind.FINETUNE: "base_model", Job.Kind.DISTILL: "teacher"}


def create_sweep(
    owner, spec: LaunchSpec, *, grid: dict | None = None, search: dict | None = None, name: str = ""
) -> Sweep:
    """Queue one job per combination of the grid's values, or per trial of a random search
    ({"space": ..., "trials": n, "seed": s}; mlcore.search), all or none: a combination that create_job refuses
    refuses the sweep, naming it. Either may vary hyperparameters, and base_model (fine-tune) or teacher
    (distillation, model ids) to compare several."""
    kind, fixed = spec.kind, spec.params or {}
    if (grid is None) == (search is None):
        raise ValidationError({"grid": "give either a grid (every combination) or a search (random trials)"})
    field = "grid" if grid is not None else "search"
    if grid is not None:
        axes = _check_grid(kind, grid, fixed)
        combinations = [dict(zip(axes, v, strict=True)) for v in itertools.product(*(grid[axis] for axis in axes))]
    else:
        combinations = _search_trials(kind, search, fixed)
        axes = list(search["space"])
        grid = {axis: [trial[axis] for trial in combinations] for axis in axes}  # what each trial drew
    # The recipe is stored expanded, so the sweep shows what its jobs share; the grid overrides the recipe.
    spec = spec.with_recipe(keep_out=grid)
    params = spec.params
    if ("base_model" in axes and spec.base_model) or ("teacher" in axes and spec.teacher is not None):
        raise ValidationError({field: f"{SWEEP_AXES[kind]} is both fixed and swept; choose one"})
    teachers = {}
    if "teacher" in axes:
        if not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in grid["teacher"]):
            raise ValidationError({field: "teacher: give model ids"})
        visible = ModelRecord.objects.visible_to(owner).in_bulk(grid["teacher"])
        missing = [str(pk) for pk in dict.fromkeys(grid["teacher"]) if pk not in visible]
        if missing:
            raise ValidationError({field: f"teacher: no model {', '.join(missing)} of yours"})
        teachers = visible
    check_active_jobs(owner, adding=len(combinations), what="this sweep's")
    webhooks.check_url(spec.webhook_url)
    check_room(owner)
    with transaction.atomic():
        sweep = Sweep.objects.create(
            owner=owner, kind=kind, dataset=spec.dataset, test_dataset=spec.test_dataset, params=params, grid=grid,
            search=search, base_model=spec.base_model, teacher=spec.teacher, webhook_url=spec.webhook_url,
            name=name or f"{Job.Kind(kind).label} {'search' if search else 'sweep'} over {', '.join(axes)}",
        )  # fmt: skip
        for combination in combinations:
            job_params = {k: v for k, v in combination.items() if k not in SWEEP_AXES.values()}
            job_spec = dataclasses.replace(
                spec, params={**params, **job_params}, base_model=combination.get("base_model", spec.base_model),
                teacher=teachers[combination["teacher"]] if "teacher" in combination else spec.teacher,
            )  # fmt: skip
            try:
                create_job(owner, job_spec, sweep=sweep)
            except ValidationError as exc:
                where = ", ".join(f"{k}={v}" for k, v in combination.items())
                raise ValidationError({field: f"{where}: {'; '.join(exc.messages)}"}) from None
    return sweep


def _check_axes(kind: str, names, params: dict, field: str) -> None:
    """Each swept name is a parameter of the job kind (or its base_model/teacher) that params do not fix."""
    allowed = [f.name for f in dataclasses.fields(Job.CONFIGS.get(kind, Job.CONFIGS[Job.Kind.FINETUNE]))]
    if kind in SWEEP_AXES:
        allowed.append(SWEEP_AXES[kind])
    for axis in names:
        if axis not in allowed:
            raise ValidationError({field: f"{axis!r} cannot be swept; choose from {', '.join(allowed)}"})
        if axis in params:
            raise ValidationError({field: f"{axis!r} is both fixed in params and swept; choose one"})


def _check_grid(kind: str, grid, params: dict) -> list[str]:
    """The grid's axes in order, once it is known to be {name: [distinct values]} within the job limit."""
    if not isinstance(grid, dict) or not grid:
        raise ValidationError({"grid": "give {parameter: [values, ...]} with at least one parameter"})
    _check_axes(kind, grid, params, "grid")
    combinations = 1
    for axis, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValidationError({"grid": f"{axis}: give a list of values"})
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise ValidationError({"grid": f"{axis}: a value is repeated"})
        combinations *= len(values)
    limit = settings.DISTILLERY_SWEEP_MAX_JOBS
    if combinations > limit:
        raise ValidationError({"grid": f"{combinations} combinations; at most {limit} jobs per sweep"})
    return list(grid)


def _search_trials(kind: str, search, params: dict) -> list[dict]:
    """The trials a random search draws (mlcore.search), once its space names sweepable parameters and its
    trials fit the job limit."""
    if not isinstance(search, dict) or not isinstance(search.get("space"), dict):
        raise ValidationError({"search": 'give {"space": {parameter: {distribution: [...]}}, "trials": n}'})
    unknown = set(search) - {"space", "trials", "seed"}
    if unknown:
        raise ValidationError({"search": f"unknown key {sorted(unknown)[0]!r}; use space, trials and seed"})
    _check_axes(kind, search["space"], params, "search")
    trials, limit = search.get("trials", 8), settings.DISTILLERY_SWEEP_MAX_JOBS
    if isinstance(trials, int) and trials > limit:
        raise ValidationError({"search": f"{trials} trials; at most {limit} jobs per sweep"})
    try:
        return sample(search["space"], trials, seed=search.get("seed", 0))
    except SearchError as exc:
        raise ValidationError({"search": str(exc)}) from None


def sweep_runs(sweep: Sweep) -> dict:
    """Each job of the sweep with the values it was given and its model's results, the best job by validation
    accuracy (the test rows stay unseen by the choice), and how many jobs are in each status."""
    runs = []
    # Prefetched with their models by Sweep.objects.with_runs(); sorted here so that any caller gets job order.
    for job in sorted(sweep.jobs.all(), key=lambda j: j.pk):
        metrics = job.result_model.metrics if job.result_model else {}
        runs.append({
            "job": job.pk,
            "status": job.status,
            "progress": round(job.progress, 4),
            "values": {axis: _swept_value(job, axis) for axis in sweep.grid},
            "model": job.result_model_id,
            "valid_accuracy": metrics.get("val/accuracy"),
            "test_accuracy": metrics.get("test/accuracy"),
            "avg_train_loss": metrics.get("train/avg_loss"),
            "error": job.error,
        })  # fmt: skip
    scored = [r for r in runs if r["valid_accuracy"] is not None]
    best = max(scored, key=lambda r: r["valid_accuracy"], default=None)  # the earlier job on a tie
    counts = {status: sum(r["status"] == status for r in runs) for status in Job.Status.values}
    return {
        "runs": runs, "best": best["job"] if best else None,
        "best_valid_accuracy": best["valid_accuracy"] if best else None,
        "counts": counts, "finished": all(r["status"] in Job.FINISHED for r in runs),
    }  # fmt: skip


def _swept_value(job: Job, axis: str):
    if axis == "base_model":
        return job.base_model
    if axis == "teacher":
        return job.teacher_id
    return job.params.get(axis)


def cancel_sweep(sweep: Sweep) -> list[Job]:
    """Cancel every job of the sweep that has not finished; the cancelled (or cancelling) jobs."""
    return [request_cancel(job) for job in sweep.jobs.exclude(status__in=Job.FINISHED).order_by("pk")]


def delete_sweep(sweep: Sweep) -> None:
    """Delete a finished sweep and its jobs (their metric points and files); the models they trained stay."""
    if sweep.jobs.exclude(status__in=Job.FINISHED).exists():
        raise ValidationError({"status": "jobs of this sweep are queued or running: cancel the sweep first"})
    with transaction.atomic():
        for job in sweep.jobs.all():
            delete_job(job)
        sweep.delete()


