"""Runs a claimed job: mlcore does the training, a callback turns its reports into rows and messages."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import queue
import shutil
import tempfile
import threading
import time
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
    """Turns mlcore's reports into MetricPoints, progress, phase and cancel, without making training wait.

    Saving a point, sending it to the job's group, updating progress and reading the cancel flag (an INSERT, a
    channels-redis send, an UPDATE and a SELECT) cost the training thread 3-6 ms a batch here, a sixth or more
    of a MiniLM step on a GPU (bench/job_callback.py). So the training thread only queues each report; a
    writer thread of this callback handles them in order: points saved (several per INSERT when it falls
    behind) before they are sent, phase changes recorded and sent; and every CANCEL_POLL_SECONDS it records
    the latest progress, reads the cancel flag (which should_stop() then reads from memory) and sends the job's
    status to its pages when its percentage moved. After a checkpoint the training thread waits until every
    point before it is saved, so a job resumed from that checkpoint has no hole in its curves. Use it through
    job_callback(), which waits for everything reported to be saved before the job is marked finished.
    """

    CANCEL_POLL_SECONDS = 0.1

    def __init__(self, job: Job):
        self.job = job
        last = MetricPoint.objects.filter(job=job).order_by("-seq").values_list("seq", flat=True).first()
        self.seq = last or 0
        self.cancel_seen = threading.Event()
        self.error: BaseException | None = None
        self._reports: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name=f"distillery-metrics-{job.pk}", daemon=True)
        self._writer.start()

    def on_phase(self, phase: str) -> None:
        self._reports.put(_NewPhase(str(phase)))

    def on_batch_end(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
        self.raise_if_failed()
        self._reports.put(_Point(MetricPoint.Kind.TRAIN, step, metrics, step / max(total_steps, 1)))

    def on_evaluate(self, split: str, step: int, metrics: dict[str, float]) -> None:
        kind = MetricPoint.Kind.TEST if split == "test" else MetricPoint.Kind.VAL
        values = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        self._reports.put(_Point(kind, step, values, None))

    def on_checkpoint(self, step: int, path: str) -> None:
        saved = threading.Event()
        self._reports.put(saved)
        while not saved.wait(1):
            self.raise_if_failed()  # the writer stopped: nothing will set it

    def should_stop(self) -> bool:
        self.raise_if_failed()
        return self.cancel_seen.is_set()

    def close(self, timeout: float = 60) -> None:
        """Wait until every report so far is saved and sent, and stop the writer."""
        self._reports.put(_CLOSE)
        self._writer.join(timeout)
        if self._writer.is_alive():
            log.warning("job %s: metrics still being written after %s s", self.job.pk, timeout)

    def raise_if_failed(self) -> None:
        """Raise what stopped the writer, if anything did."""
        if self.error is not None:
            raise RuntimeError(f"could not record the job's metrics: {self.error}") from self.error

    def _write(self) -> None:
        from django.db import connection

        last_poll, progress, sent_percent = -math.inf, None, None
        try:
            while True:
                closing, points = False, []
                for report in self._take():
                    if isinstance(report, _Point):
                        points.append(report)
                        continue
                    progress = self._save(points, progress)  # the points before it go first
                    points = []
                    if isinstance(report, _NewPhase):
                        services.set_phase(self.job.pk, report.phase)
                    elif isinstance(report, threading.Event):
                        report.set()
                    else:
                        closing = True
                progress = self._save(points, progress)
                if closing or time.monotonic() - last_poll >= self.CANCEL_POLL_SECONDS:
                    last_poll = time.monotonic()
                    sent_percent = self._poll(progress, sent_percent)
                    progress = None
                    if closing:
                        return
        except Exception as exc:  # the training thread raises it at its next report
            log.exception("job %s: could not record metrics", self.job.pk)
            self.error = exc
        finally:
            connection.close()

    def _poll(self, progress: float | None, sent_percent: int | None) -> int:
        """Record the latest progress, read the cancel flag, and send the job's status to its pages when its
        whole percentage moved (a live progress bar in at most 100 messages); the percentage sent."""
        if progress is not None:
            services.set_progress(self.job.pk, progress)
        job = Job.objects.get(pk=self.job.pk)
        if job.cancel_requested:
            self.cancel_seen.set()
        percent = int(job.progress * 100)
        if percent != sent_percent:
            services.broadcast_status(job)
        return percent

    def _take(self) -> list:
        """The reports waiting, after blocking up to CANCEL_POLL_SECONDS for the first."""
        try:
            reports = [self._reports.get(timeout=self.CANCEL_POLL_SECONDS)]
        except queue.Empty:
            return []
        while True:
            try:
                reports.append(self._reports.get_nowait())
            except queue.Empty:
                return reports

    def _save(self, points: list[_Point], progress: float | None) -> float | None:
        """Save and send the points; the progress of the last one that has any, else `progress`."""
        if not points:
            return progress
        rows = []
        for point in points:
            self.seq += 1
            values = {key: _plain(value) for key, value in point.values.items()}
            rows.append(MetricPoint(job=self.job, seq=self.seq, step=point.step, kind=point.kind, values=values))
        services.record_metrics(self.job, rows)
        return next((p.progress for p in reversed(points) if p.progress is not None), progress)


@dataclasses.dataclass(frozen=True)
class _Point:
    kind: str
    step: int
    values: dict
    progress: float | None  # of the training steps, for a training batch's point


@dataclasses.dataclass(frozen=True)
class _NewPhase:
    phase: str


_CLOSE = object()


@contextlib.contextmanager
def job_callback(job: Job):
    """A JobCallback for the length of the block; on leaving it, everything reported is saved. A failure to
    save fails the job, unless the block already raised (that error is the one to report)."""
    callback = JobCallback(job)
    try:
        yield callback
    except BaseException:
        callback.close()
        raise
    callback.close()
    callback.raise_if_failed()


def _plain(value):
    return float(value) if isinstance(value, (int, float)) else value


def execute(job: Job) -> None:
    """Train, measure, register the model, and record how the job ended; never leaves the job running.

    Checkpoints go to a folder per job that outlives this process, so a worker that takes the job over after
    this one dies continues from the last checkpoint; it is removed once the job has ended.
    """
    with _heartbeat(job.pk):
        if job.kind == Job.Kind.CLASSIFY:
            _guarded(job, lambda: _classify_file(job))
            return
        checkpoints = services.checkpoint_dir(job)
        _guarded(job, lambda: _train_and_register(job, checkpoints))
    shutil.rmtree(checkpoints, ignore_errors=True)


@contextlib.contextmanager
def _heartbeat(job_id: int):
    """Record a sign of life every DISTILLERY_HEARTBEAT_SECONDS while the job runs, from a thread of its own:
    long phases without batches (tokenising, evaluating a big test set) must not look like a dead worker."""
    stop = threading.Event()

    def beat():
        from django.db import connection

        try:
            while not stop.wait(settings.DISTILLERY_HEARTBEAT_SECONDS):
                try:
                    services.heartbeat(job_id)
                except Exception:  # a database hiccup: try again at the next beat
                    log.warning("job %s: heartbeat failed", job_id, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"distillery-heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def _guarded(job: Job, work) -> None:
    """Run `work`, then record how the job ended: succeeded, cancelled, or failed with a readable error."""
    try:
        work()
    except Cancelled:
        services.finish_job(job, Job.Status.CANCELLED)
    except Exception as exc:
        log.exception("job %s failed", job.pk)
        message = f"{type(exc).__name__}: {exc}"
        services.finish_job(job, Job.Status.FAILED, error=message + "\n\n" + traceback.format_exc(limit=5))


def _train_and_register(job: Job, checkpoints: Path) -> None:
    data = services.load_dataset(job.dataset)
    with (
        tempfile.TemporaryDirectory(prefix=f"distillery-job-{job.pk}-") as output_dir,
        tempfile.TemporaryDirectory(prefix=f"distillery-job-{job.pk}-onnx-") as exports,
    ):
        result = _train(job, data, output_dir, checkpoints)
        services.set_phase(job.pk, "measuring CPU speed")
        result.metrics |= _cpu_speed(output_dir, data.texts[:64])
        services.set_phase(job.pk, "comparing int8 with fp32")
        result.metrics["int8"] = _int8_report(job, data, output_dir, exports)
        services.set_phase(job.pk, "storing the model")
        _ship_export(job, output_dir, exports, services.serving_precision_for(result.metrics))
        record = services.register_model(job, result)
    services.finish_job(job, Job.Status.SUCCEEDED, result_model=record)


def _classify_file(job: Job) -> None:
    """Classify an uploaded file with the job's model (at its serving precision) into a CSV in storage."""
    from mlcore.batchfile import classify_table

    from . import serving

    table = services.load_texts(job)
    classifier = serving.load_classifier(job.model)

    def progress(done: int, total: int) -> None:
        services.set_progress(job.pk, done / max(total, 1))
        job.progress = done / max(total, 1)
        services.broadcast_status(job)

    with tempfile.TemporaryDirectory(prefix=f"distillery-job-{job.pk}-") as folder:
        out = Path(folder) / f"{Path(job.input_filename).stem or 'texts'}-classified.csv"
        classify_table(
            classifier, table, out, on_progress=progress, should_stop=lambda: services.cancel_requested(job.pk)
        )
        services.save_output(job, out)
    services.finish_job(job, Job.Status.SUCCEEDED)


def _train(job: Job, data: TextDataset, output_dir: str, checkpoints: Path):
    from mlcore import distill, train  # torch loads here, in the worker only

    test = services.load_dataset(job.test_dataset) if job.test_dataset_id else None
    with job_callback(job) as callback:
        if job.kind == Job.Kind.DISTILL:
            config = config_from_dict(DistillConfig, job.params)
            teacher_dir = services.model_dir(job.teacher)
            return distill.distill(
                data, teacher_dir, output_dir, config, callback, checkpoint_dir=checkpoints, test_dataset=test
            )
        config = config_from_dict(TrainConfig, job.params)
        return train.finetune(
            data, job.base_model, output_dir, config, callback, checkpoint_dir=checkpoints, test_dataset=test
        )


def _int8_report(job: Job, data: TextDataset, model_dir: str, exports: str) -> dict:
    """int8 vs fp32 on the job's own validation rows, on the runtime that will serve them: the record then
    serves int8 if that costs at most DISTILLERY_INT8_MAX_DROP points (services.serving_precision_for). On
    ONNX Runtime the exports it measured are left in `exports`."""
    from mlcore.quantize import compare_precisions
    from mlcore.train import make_splits

    from . import serving

    config = config_from_dict(DistillConfig if job.kind == Job.Kind.DISTILL else TrainConfig, job.params)
    valid = make_splits(data, config)["valid"]
    try:
        return compare_precisions(
            model_dir, valid if len(valid) else data, runtime=serving.runtime(), onnx_dir=exports
        )
    except Exception as exc:  # a model quantisation cannot handle still serves in fp32
        log.warning("int8 comparison failed for job %s", job.pk, exc_info=True)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _ship_export(job: Job, model_dir: str, exports: str, precision: str) -> None:
    """Store the ONNX export the record will be served at with the model, so that no web process exports or
    quantises it again (mlcore.onnxrt.ship); without one (PyTorch serving writes none, or the export failed)
    they export it on first use as before."""
    from mlcore import onnxrt

    try:
        shipped = onnxrt.ship(model_dir, [precision], exports)
    except OSError:
        log.warning("job %s could not ship its ONNX export; it will be exported where it is served", job.pk)
        return
    log.info("job %s ships %s", job.pk, ", ".join(shipped) or "no ONNX export")


def _cpu_speed(model_dir: str, texts: list[str]) -> dict:
    """CPU latency (batch 1) and throughput (batch 32) of the new model, on texts of its own dataset."""
    from mlcore.evaluate import measure_cpu_speed

    return measure_cpu_speed(model_dir, texts, max_seconds=settings.DISTILLERY_SPEED_SECONDS)
