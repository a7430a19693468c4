"""Runs a claimed job: mlcore does the training, a callback turns its reports into rows and messages."""

from __future__ import annotations

import logging
import shutil
import tempfile
import traceback
from pathlib import Path

from django.conf import settings

from mlcore.callbacks import Callback, Cancelled
from mlcore.config import DistillConfig, TrainConfig, config_from_dict
from mlcore.data import TextDataset

from . import services
from .models import Job, MetricPoint

log = logging.getLogger(__name__)


class JobCallback(Callback):
    """Saves each batch's metrics as a MetricPoint, tracks progress, and relays cancel requests."""

    def __init__(self, job: Job):
        self.job = job
        last = MetricPoint.objects.filter(job=job).order_by("-seq").values_list("seq", flat=True).first()
        self.seq = last or 0

    def _record(self, kind: str, step: int, metrics: dict) -> None:
        self.seq += 1
        values = {key: _plain(value) for key, value in metrics.items()}
        services.record_metric(self.job, seq=self.seq, step=step, kind=kind, values=values)

    def on_batch_end(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
        self._record(MetricPoint.Kind.TRAIN, step, metrics)
        services.set_progress(self.job.pk, step / max(total_steps, 1))

    def on_evaluate(self, split: str, step: int, metrics: dict[str, float]) -> None:
        kind = MetricPoint.Kind.TEST if split == "test" else MetricPoint.Kind.VAL
        self._record(kind, step, {k: v for k, v in metrics.items() if isinstance(v, (int, float))})

    def should_stop(self) -> bool:
        return services.cancel_requested(self.job.pk)


def _plain(value):
    return float(value) if isinstance(value, (int, float)) else value


def execute(job: Job) -> None:
    """Train, measure, register the model, and record how the job ended; never leaves the job running.

    Checkpoints go to a folder per job that outlives this process, so a worker that takes the job over after
    this one dies continues from the last checkpoint; it is removed once the job has ended.
    """
    checkpoints = services.checkpoint_dir(job)
    try:
        data = services.load_dataset(job.dataset)
        with tempfile.TemporaryDirectory(prefix=f"distillery-job-{job.pk}-") as output_dir:
            result = _train(job, data, output_dir, checkpoints)
            result.metrics |= _cpu_speed(output_dir, data.texts[:64])
            record = services.register_model(job, result)
        services.finish_job(job, Job.Status.SUCCEEDED, result_model=record)
    except Cancelled:
        services.finish_job(job, Job.Status.CANCELLED)
    except Exception as exc:
        log.exception("job %s failed", job.pk)
        message = f"{type(exc).__name__}: {exc}"
        services.finish_job(job, Job.Status.FAILED, error=message + "\n\n" + traceback.format_exc(limit=5))
    shutil.rmtree(checkpoints, ignore_errors=True)


def _train(job: Job, data: TextDataset, output_dir: str, checkpoints: Path):
    from mlcore import distill, train  # torch loads here, in the worker only

    callback = JobCallback(job)
    if job.kind == Job.Kind.DISTILL:
        config = config_from_dict(DistillConfig, job.params)
        teacher_dir = services.model_dir(job.teacher)
        return distill.distill(data, teacher_dir, output_dir, config, callback, checkpoint_dir=checkpoints)
    config = config_from_dict(TrainConfig, job.params)
    return train.finetune(data, job.base_model, output_dir, config, callback, checkpoint_dir=checkpoints)


def _cpu_speed(model_dir: str, texts: list[str]) -> dict:
    """CPU latency (batch 1) and throughput (batch 32) of the new model, on texts of its own dataset."""
    from mlcore.evaluate import measure_cpu_speed

    return measure_cpu_speed(model_dir, texts, max_seconds=settings.DISTILLERY_SPEED_SECONDS)
