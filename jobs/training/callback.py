"""The bridge from mlcore's training loop to the platform: its reports become metric points, progress, phase
and status messages, and the cancel flag reaches it, without making training wait.

Runs in: the workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import queue
import threading
import time
from pathlib import Path

from django.db import connection

from mlcore.callbacks import Callback

from ..models import Job, MetricPoint
from . import checkpoint_mirror, events, lifecycle

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
    point before it is saved, so a job resumed from that checkpoint has no hole in its curves; a resumed run
    first drops what the run before it reported past its checkpoint (lifecycle.rewind_metrics). Every write is
    fenced by the run's attempt: once another run owns the job, the next report raises Superseded. Use it through
    job_callback(), which waits for everything reported to be saved before the job is marked finished.
    """

    CANCEL_POLL_SECONDS = 0.1

    def __init__(self, job: Job):
        self.job = job
        last = MetricPoint.objects.filter(job=job).order_by("-seq").values_list("seq", flat=True).first()
        self.seq = last or 0
        self.cancel_seen = threading.Event()
        self.superseded = threading.Event()
        self.error: BaseException | None = None
        self._reports: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name=f"distillery-metrics-{job.pk}", daemon=True)
        self._writer.start()

    def on_train_begin(self, info: dict) -> None:
        log.info(
            "job %s: %s training rows, %s validation, %s test; %s steps on %s; %s parameters%s",
            self.job.pk, info.get("train_rows"), info.get("valid_rows"), info.get("test_rows"), info.get("total_steps"),
            info.get("device"), f"{info.get('num_parameters') or 0:,}",
            f", resuming after step {info['resumed_from_step']}" if info.get("resumed_from_step") else "",
        )  # fmt: skip
        if (self.job.run_attempt or 1) > 1:  # a resumed run: the runs before it may have gone past its checkpoint
            self._reports.put(_Rewind(int(info.get("resumed_from_step") or 0)))

    def on_phase(self, phase: str) -> None:
        self._reports.put(_NewPhase(str(phase)))

    def on_batch_end(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
        self.raise_if_failed()
        values = metrics | {"time": _now()}
        self._reports.put(_Point(MetricPoint.Kind.TRAIN, step, values, step / max(total_steps, 1)))

    def on_evaluate(self, split: str, step: int, metrics: dict[str, float]) -> None:
        kind = MetricPoint.Kind.TEST if split == "test" else MetricPoint.Kind.VAL
        values = {k: v for k, v in metrics.items() if isinstance(v, (int, float))} | {"time": _now()}
        self._reports.put(_Point(kind, step, values, None))

    def before_checkpoint(self, step: int) -> None:
        """Checked in the training thread, against the database: a replaced run writes no checkpoint."""
        self.raise_if_failed()
        if not self.job.owned().exists():
            raise lifecycle.Superseded(f"job {self.job.pk}: another run owns it now; no checkpoint written")

    def on_checkpoint(self, step: int, path: str) -> None:
        log.info("job %s: checkpoint after step %s", self.job.pk, step)
        saved = threading.Event()
        self._reports.put(saved)
        while not saved.wait(1):
            self.raise_if_failed()  # the writer stopped: nothing will set it
        # Off this host too (S3): a job whose host vanishes resumes from it on another one.
        checkpoint_mirror.upload(self.job.pk, self.job.run_attempt or self.job.attempts, step, Path(path))

    def should_stop(self) -> bool:
        self.raise_if_failed()
        if self.superseded.is_set():
            raise lifecycle.Superseded(f"job {self.job.pk}: another run owns it now")
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
                        lifecycle.set_phase(self.job, report.phase)
                    elif isinstance(report, _Rewind):
                        lifecycle.rewind_metrics(self.job, report.step)
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
            lifecycle.set_training_progress(self.job, progress)
        job = Job.objects.get(pk=self.job.pk)
        if not self.job.owned().exists():
            self.superseded.set()
        if job.cancel_requested:
            self.cancel_seen.set()
        percent = int(job.progress * 100)
        if percent != sent_percent:
            events.broadcast_status(job)
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
        lifecycle.record_metrics(self.job, rows)
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


@dataclasses.dataclass(frozen=True)
class _Rewind:
    step: int  # the checkpoint's, which the run resumed from


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


def _now() -> float:
    """The wall-clock time of a report, in seconds since the epoch (ms precision): the page's time axis, taken
    when training reported it rather than when the writer saved it (several points can share a save)."""
    return round(time.time(), 3)


def _plain(value):
    return float(value) if isinstance(value, (int, float)) else value
