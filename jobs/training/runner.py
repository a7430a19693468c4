"""Runs a claimed training job on its worker: mlcore trains, the model is measured, stored and
registered; the job always ends succeeded, cancelled or failed with a readable error (lifecycle.running).

Runs in: the workers (tasks.run_job). mlcore's training modules (torch) are imported inside the functions that
use them: Celery's task autodiscovery can import this module in the web process, which must not load torch.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

from mlcore.data import TextDataset

from ..datasets.services import load_dataset
from ..files import checkpoint_dir
from ..models import Job
from ..registry.precision import serving_precision_for, serving_runtime
from ..registry.services import register_model
from ..registry.storage import model_dir
from . import lifecycle
from .callback import job_callback

log = logging.getLogger(__name__)


def execute(job: Job) -> None:
    """Train, measure, register the model, and record how the job ended; never leaves the job running.

    Checkpoints go to a folder per job that outlives this process, so a worker that takes the job over after
    this one dies continues from the last checkpoint; it is removed once the job has ended.
    """
    checkpoints = checkpoint_dir(job.pk)
    with lifecycle.running(job):
        _train_and_register(job, checkpoints)
    shutil.rmtree(checkpoints, ignore_errors=True)


def _train_and_register(job: Job, checkpoints: Path) -> None:
    data = load_dataset(job.dataset)
    with (
        tempfile.TemporaryDirectory(prefix=f"distillery-job-{job.pk}-") as output_dir,
        tempfile.TemporaryDirectory(prefix=f"distillery-job-{job.pk}-onnx-") as exports,
    ):
        result = _train(job, data, output_dir, checkpoints)
        lifecycle.set_phase(job.pk, "measuring CPU speed")
        result.metrics |= _cpu_speed(output_dir, data.texts[:64])
        lifecycle.set_phase(job.pk, "comparing int8 with fp32")
        result.metrics["int8"] = _int8_report(job, data, output_dir, exports)
        lifecycle.set_phase(job.pk, "storing the model")
        _ship_export(job, output_dir, exports, serving_precision_for(result.metrics))
        record = register_model(job, result)
    lifecycle.finish_job(job, Job.Status.SUCCEEDED, result_model=record)


def _train(job: Job, data: TextDataset, output_dir: str, checkpoints: Path):
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
