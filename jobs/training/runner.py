"""Runs a claimed training job on its worker: mlcore trains, the model is measured, stored and
registered; the job always ends succeeded, cancelled or failed with a readable error (lifecycle.running).

Runs in: the workers (tasks.run_job). mlcore's training modules (torch) are imported inside the functions that
use them: Celery's task autodiscovery can import this module in the web process, which must not load torch.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

from django.conf import settings

from mlcore.data import TextDataset

from ..datasets.services import load_dataset
from ..files import adopt_run_dir
from ..models import Job, LabelIssues
from ..registry.precision import serving_precision_for, serving_runtime
from ..registry.rows import store_rows
from ..registry.services import register_model
from ..registry.storage import model_dir
from . import checkpoint_mirror, lifecycle
from .callback import job_callback

log = logging.getLogger(__name__)


def execute(job: Job) -> None:
    """Train, measure, register the model, and record how the job ended; never leaves the job running.

    The run works in a folder of its own that outlives this process (files.run_dir): its checkpoints, then the
    trained model and what training reported. A run that takes the job over after this one dies adopts that
    folder, so it resumes from the last checkpoint, or, once training is done, from the saved model with only the
    measuring and storing left. The job's folder is removed once the job has ended (lifecycle.finish_job).
    """
    attempt = job.run_attempt or job.attempts
    with lifecycle.running(job):
        workdir = adopt_run_dir(job.pk, attempt)
        if checkpoint_mirror.restore(job.pk, attempt, workdir / "checkpoint") is not None:
            log.warning("job %s: resuming from the checkpoint in storage", job.pk)
        _train_and_register(job, workdir)


def _train_and_register(job: Job, workdir: Path) -> None:
    data = load_dataset(job.dataset)
    with tempfile.TemporaryDirectory(prefix=f"distillery-job-{job.pk}-onnx-") as exports:
        result = _trained(workdir)
        if result is None:
            result = _train(job, data, workdir / "model", workdir / "checkpoint")
            (workdir / TRAINED).write_text(result.to_json())
        else:  # an earlier run of the job trained it and stopped before the model was stored
            log.warning("job %s: resuming from the model an earlier run trained", job.pk)
        output_dir = str(result.output_dir)
        lifecycle.set_phase(job, lifecycle.MEASURING_SPEED)
        result.metrics |= _cpu_speed(output_dir, data.texts[:64])
        lifecycle.set_phase(job, lifecycle.COMPARING_INT8)
        result.metrics["int8"] = _int8_report(job, data, output_dir, exports)
        lifecycle.set_phase(job, lifecycle.FINDING_LABEL_ERRORS)
        issues = _label_issues(job, data, output_dir)
        lifecycle.set_phase(job, lifecycle.STORING)
        _ship_export(job, output_dir, exports, serving_precision_for(result.metrics))
        lifecycle.succeed_with(job, lambda: _register(job, result, issues))


def _register(job: Job, result, issues: dict | None = None):
    """The model's record, with its test rows' predictions (their positions point into the job's test set, or
    into its training data when a share of it was held out) and the suspected label errors found in its training
    rows stored beside it."""
    record = register_model(job, result)
    if result.test_rows is not None:
        store_rows(record, result.test_rows, job.test_dataset if job.test_dataset_id else job.dataset)
    if issues is not None:
        LabelIssues.objects.create(model=record, dataset=job.dataset, **issues)
    return record


def _label_issues(job: Job, data: TextDataset, model_dir: str) -> dict | None:
    """The training rows whose given label the new model rejects out of fold (confident learning, on its
    encoder's embeddings of every row of the job's dataset); None when that fails, which never fails the job."""
    from mlcore.devices import resolve_device  # torch: see the module's docstring
    from mlcore.label_issues import label_issues

    try:
        return label_issues(model_dir, data, device=resolve_device(job.config.device), seed=job.config.seed)
    except Exception:
        log.warning("job %s: the search for label errors failed", job.pk, exc_info=True)
        return None


TRAINED = "trained.json"  # in the run's folder: what training reported, written once the model is saved


def _trained(workdir: Path):
    """What an earlier run's training reported, with its saved model, or None when training is still to do."""
    from mlcore.train import TrainResult  # torch: see the module's docstring

    path = workdir / TRAINED
    if not path.is_file():
        return None
    result = TrainResult.from_json(path.read_text())
    return dataclasses.replace(result, output_dir=workdir / "model")  # the folder was renamed since


def _train(job: Job, data: TextDataset, output_dir: Path, checkpoints: Path):
    from mlcore import distill, train  # torch: see the module's docstring

    test = load_dataset(job.test_dataset) if job.test_dataset_id else None
    with job_callback(job) as callback:
        if job.kind == Job.Kind.DISTILL:
            return distill.distill(
                data, model_dir(job.teacher), output_dir, job.config, callback, checkpoint_dir=checkpoints,
                test_dataset=test,
            )  # fmt: skip
        base = str(model_dir(job.base_record)) if job.base_record_id else job.base_model  # a stored model, by id
        return train.finetune(
            data, base, output_dir, job.config, callback, checkpoint_dir=checkpoints, test_dataset=test
        )


def _int8_report(job: Job, data: TextDataset, model_dir: str, exports: str) -> dict:
    """int8 vs fp32 on the job's own validation rows, on the runtime that will serve them: the record then
    serves int8 if that costs at most DISTILLERY_INT8_MAX_DROP points (registry.precision.serving_precision_for). On
    ONNX Runtime the exports it measured are left in `exports`."""
    from mlcore.precisions import compare_precisions  # torch: see the module's docstring
    from mlcore.train import make_splits

    valid = make_splits(data, job.config)["valid"]
    try:
        return compare_precisions(model_dir, valid if len(valid) else data, runtime=serving_runtime(), onnx_dir=exports)
    except Exception as exc:  # a model quantisation cannot handle still serves in fp32
        log.warning("int8 comparison failed for job %s", job.pk, exc_info=True)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _ship_export(job: Job, model_dir: str, exports: str, precision: str) -> None:
    """Store the ONNX export the record will be served at with the model, so that no web process exports or
    quantises it again (mlcore.onnxrt.ship); without one (PyTorch serving writes none, or the export failed)
    they export it on first use as before."""
    from mlcore import onnxrt  # torch: see the module's docstring

    try:
        shipped = onnxrt.ship(model_dir, [precision], exports)
    except OSError:
        log.warning("job %s could not ship its ONNX export; it will be exported where it is served", job.pk)
        return
    log.info("job %s ships %s", job.pk, ", ".join(shipped) or "no ONNX export")


def _cpu_speed(model_dir: str, texts: list[str]) -> dict:
    """CPU latency (batch 1) and throughput (batch 32) of the new model, on texts of its own dataset."""
    from mlcore.evaluate import measure_cpu_speed  # torch: see the module's docstring

    return measure_cpu_speed(model_dir, texts, max_seconds=settings.DISTILLERY_SPEED_SECONDS)
