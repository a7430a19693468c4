"""A job's own log: what the worker logs while it runs the job, kept as JobLogLines and sent to the job's pages.

Runs in: the workers (lifecycle.running installs it around a job's work). A record belongs to the job when it
comes from the thread that runs the job or from one of the job's own helper threads (named "...-<job id>": the
metrics writer, the heartbeat), so another job in the same process (a threads pool) is never mixed in. Each line
is saved, fenced by the run's attempt like every write of a run, then sent over the job's group as a "log" event
with its seq; the consumer replays lines after ?logs_after= and drops those it sent, as for metric points. Lines
are INFO and above, one line each (an exception adds its type and message, not its traceback, which stays in
the worker's own log), and about the newest JobLogLine.LOG_LINES_KEPT of a job are kept.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
from collections.abc import Callable

from django.db import transaction
from django.db.models import Max

from ..models import Job, JobLogLine
from . import events

PRUNE_EVERY = 100  # lines: the oldest beyond LOG_LINES_KEPT go in one DELETE this often, not one per line


class JobLogHandler(logging.Handler):
    """Saves and sends the records of one job's threads (see the module's docstring)."""

    def __init__(self, job: Job, thread_id: int, fence: Callable[[Job], None]):
        super().__init__(level=logging.INFO)
        self.job, self.thread_id, self.fence = job, thread_id, fence
        self.suffix = f"-{job.pk}"
        self.seq = JobLogLine.objects.filter(job_id=job.pk).aggregate(last=Max("seq"))["last"] or 0
        self._seq_lock = threading.Lock()
        self._inside = threading.local()  # a record logged while saving one (a database warning) is not saved

    def belongs(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread_id or str(record.threadName).endswith(self.suffix)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.belongs(record) or getattr(self._inside, "active", False):
            return
        self._inside.active = True
        try:
            self._save(record)
        except Exception:  # noqa: BLE001 - a log line must never break the job; Superseded included
            pass
        finally:
            self._inside.active = False

    def _save(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f" ({type(error).__name__}: {error})"
        with self._seq_lock:  # seqs in the order lines are saved, whichever thread logs them
            with transaction.atomic():
                self.fence(self.job)
                line = JobLogLine.objects.create(
                    job_id=self.job.pk, seq=self.seq + 1, level=record.levelname, logger=record.name[:200],
                    logged_at=datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC),
                    message=message[: JobLogLine.MESSAGE_CHARS],
                )  # fmt: skip
            self.seq = line.seq
            if line.seq % PRUNE_EVERY == 0 and line.seq > JobLogLine.LOG_LINES_KEPT:
                JobLogLine.objects.filter(job_id=self.job.pk, seq__lte=line.seq - JobLogLine.LOG_LINES_KEPT).delete()
        events.group_send(events.job_group(self.job.pk), line.to_event())


@contextlib.contextmanager
def captured(job: Job, fence: Callable[[Job], None]):
    """For the length of the block, keep what the job's threads log (on the root logger, where every library's
    records arrive) as the job's log lines; `fence` (lifecycle.fence) stops a run that no longer owns the job."""
    handler = JobLogHandler(job, threading.get_ident(), fence)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
