"""A dataset's quality report: queued when the dataset is made, computed by a worker (mlcore.quality), read by
the page and the API; a finding's rows, and a model's suspected label errors, written as CSV.

Runs in: both: the web process queues a report and writes the CSVs (in a helper process, jobs.offload, since
reading a large file is seconds of CPU); a worker computes it (tasks.dataset_quality).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from mlcore.data import DataError, read_table
from mlcore.quality import FINDINGS, quality_report, table_rows_csv

from .. import offload
from ..files import local_file, upload_limit_bytes
from ..models import Dataset, DatasetQuality, LabelIssues, ModelRecord
from ..training import dispatch

log = logging.getLogger(__name__)


def queue_report(dataset: Dataset) -> DatasetQuality:
    """Record the dataset's report as pending and have a worker compute it once this transaction commits. A
    broker that cannot be reached is logged, not raised: the dataset is made, and asking for its report later
    sends the task again (report_for)."""
    task_id = uuid.uuid4().hex
    quality, _ = DatasetQuality.objects.update_or_create(
        dataset=dataset,
        defaults={
            "status": DatasetQuality.Status.PENDING, "report": {}, "error": "", "task_id": task_id,
            "queued_at": timezone.now(),
        },  # fmt: skip
    )
    transaction.on_commit(lambda: _send(dataset.pk, task_id))
    return quality


def _send(dataset_id: int, task_id: str) -> None:
    try:
        dispatch.dataset_quality(dataset_id, task_id)
    except OperationalError as exc:
        log.warning("could not queue the quality report of dataset %s: %s", dataset_id, exc)


# A report still pending this long after it was queued is queued again: its task may never have been sent (the
# broker was down) or its worker was lost. Computing a report twice is harmless.
RESEND_AFTER = timedelta(minutes=15)


def report_for(dataset: Dataset) -> DatasetQuality:
    """The dataset's report as stored; one is queued for a dataset made before reports were, or again for one
    pending longer than RESEND_AFTER."""
    try:
        quality = dataset.quality
    except DatasetQuality.DoesNotExist:
        return queue_report(dataset)
    if quality.status == DatasetQuality.Status.PENDING and timezone.now() - quality.queued_at > RESEND_AFTER:
        DatasetQuality.objects.filter(pk=quality.pk).update(queued_at=timezone.now())
        transaction.on_commit(lambda: _send(dataset.pk, quality.task_id))
    return quality


def compute_report(dataset_id: int) -> str:
    """Compute and store a dataset's report (in a worker): "ready", "failed", or "gone" when the dataset was
    deleted meanwhile."""
    quality = DatasetQuality.objects.select_related("dataset").filter(dataset_id=dataset_id).first()
    if quality is None:
        return "gone"
    try:
        report, status, error = quality_report(_rows(quality.dataset)), DatasetQuality.Status.READY, ""
    except Exception as exc:  # a file that no longer reads: say so on the page rather than stay pending
        log.exception("quality report of dataset %s failed", dataset_id)
        # mlcore's DataError speaks to the user; anything else (a missing file) may name server paths: not shown.
        said = str(exc) if isinstance(exc, DataError) else "its file could not be read"
        report, status, error = {}, DatasetQuality.Status.FAILED, f"{type(exc).__name__}: {said}"
    # Only a pending report is written: of two runs of its task (sent again, RESEND_AFTER), the first to end wins.
    DatasetQuality.objects.filter(pk=quality.pk, status=DatasetQuality.Status.PENDING).update(
        status=status, report=report, error=error[:2000], computed_at=timezone.now()
    )
    return status


def _rows(dataset: Dataset):
    """The dataset's rows, read as services.load_dataset reads them for a job (which imports this module)."""
    with local_file(dataset.file.name) as path:
        data, _ = read_table(
            path, format=dataset.format, text_column=dataset.text_column, label_column=dataset.label_column,
            max_bytes=upload_limit_bytes(),
        )  # fmt: skip
    return data


def finding_csv(dataset: Dataset, quality: DatasetQuality, finding: str) -> str:
    """The rows of one finding of a ready report as CSV (row, label, group for grouped findings, words, text).
    KeyError for a name that is not a finding."""
    found = quality.report["findings"][finding]
    extra = {"group": found["group_of"]} if "group_of" in found else None
    return _rows_csv(dataset, found["rows"], extra)


def label_issues_csv(issues: LabelIssues) -> str:
    """A model's suspected label errors as CSV, most suspect first: row, label (the given one), suggested,
    confidence, suggested_probability, words, text (in full, read from the dataset)."""
    suspects = issues.suspects
    extra = {
        column: {str(s["row"]): s[column] for s in suspects}
        for column in ("suggested", "confidence", "suggested_probability")
    }
    return _rows_csv(issues.dataset, [s["row"] for s in suspects], extra)


def _rows_csv(dataset: Dataset, rows: list[int], extra: dict | None) -> str:
    with local_file(dataset.file.name) as path:
        return offload.run(
            table_rows_csv, str(path), format=dataset.format, text_column=dataset.text_column,
            label_column=dataset.label_column, max_bytes=upload_limit_bytes(), rows=rows, extra=extra,
        )  # fmt: skip


def page_context(dataset: Dataset, user) -> dict:
    """The dataset page's quality section: the report (queued if missing), its findings in the page's order,
    and the suspected label errors that the user's models found in it."""
    quality = report_for(dataset)
    found = quality.report.get("findings", {}) if quality.status == DatasetQuality.Status.READY else {}
    issues = LabelIssues.objects.filter(dataset=dataset, model__in=ModelRecord.objects.visible_to(user))
    return {
        "quality": quality,
        "quality_findings": [{"key": key, **found[key]} for key in FINDINGS if key in found],
        "label_issues": issues.select_related("model").order_by("-created_at")[:10],
    }
