"""File classification: a file of texts validated and stored in the web process, classified by a worker on the
CPU queue into a CSV with each row's label and probabilities.

Runs in: the web process (create_classify_job) and the workers (run, from tasks.run_job).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage

from mlcore.data import DataError, detect_format, read_texts

from ..files import check_upload_size, local_file, local_upload, saved_unless_failed, upload_limit_bytes
from ..models import Job, ModelRecord
from ..registry.services import promoted_model
from ..training import dispatch, events, lifecycle
from ..training.launch import start_on_commit
from .engines import load_classifier


def create_classify_job(owner, upload, *, model: ModelRecord | None = None, text_column: str | None = None) -> Job:
    """Validate a file of texts now (clear errors, nothing stored if bad), store it, and queue a job on the
    CPU queue that writes a CSV with each row's label and probabilities; sent and announced once committed."""
    model = model or promoted_model(owner)
    if model is None:
        raise ValidationError({"model": "no promoted model: promote one, or pass the id of one of your models"})
    check_upload_size(upload)
    try:
        with local_upload(upload) as path:
            table = read_texts(
                path, format=detect_format(upload.name), text_column=text_column or None,
                max_bytes=upload_limit_bytes(),
            )  # fmt: skip
    except DataError as exc:
        raise ValidationError({"file": str(exc)}) from None

    dispatch.check_reachable()  # Redis down: nothing stored, a 503 (jobs/outages.py)
    upload.seek(0)
    with saved_unless_failed() as save:  # one INSERT: the file goes if it fails
        job = Job.objects.create(
            owner=owner, kind=Job.Kind.CLASSIFY, model=model, base_model=model.name,
            input_file=save(f"classify/input/{uuid.uuid4().hex}/{Path(upload.name).name}", upload),
            input_filename=Path(upload.name).name, celery_task_id=uuid.uuid4().hex,
            params={"text_column": table.text_column, "format": table.format, "rows": len(table.texts)},
        )  # fmt: skip
    start_on_commit(job)
    return job


def run(job: Job) -> None:
    """Run a claimed file classification; how it ended is recorded whatever happens (lifecycle.running)."""
    with lifecycle.running(job):
        classify_file(job)


def classify_file(job: Job) -> None:
    """Classify a classify job's file with its model (at its serving precision) into a CSV in storage."""
    from mlcore.batchfile import ResultSummary, classify_table  # imports torch: in the worker only

    table = load_texts(job)
    classifier = load_classifier(job.model)

    def progress(done: int, total: int) -> None:
        lifecycle.set_progress(job, done / max(total, 1))
        job.progress = done / max(total, 1)
        events.broadcast_status(job)

    summary = ResultSummary.for_labels(classifier.label_names)
    with tempfile.TemporaryDirectory(prefix=f"distillery-job-{job.pk}-") as folder:
        out = Path(folder) / f"{Path(job.input_filename).stem or 'texts'}-classified.csv"
        classify_table(
            classifier, table, out, on_progress=progress, should_stop=lambda: lifecycle.cancel_requested(job.pk),
            summary=summary,
        )  # fmt: skip
        save_output(job, out, summary.to_dict())
    lifecycle.finish_job(job, Job.Status.SUCCEEDED)


def load_texts(job: Job):
    """The texts of a classify job's stored upload (mlcore.data.TextTable), read under the upload limit as the
    upload was; a storage without local paths copies it out in chunks (jobs.files.local_file), not whole."""
    with local_file(job.input_file.name) as path:
        return read_texts(
            path, format=job.params.get("format"), text_column=job.params.get("text_column"),
            max_bytes=upload_limit_bytes(),
        )  # fmt: skip


def save_output(job: Job, csv_path: Path, summary: dict | None = None) -> None:
    """Store the CSV and record it on the job with its summary (label counts, first rows) for the job's page."""
    with csv_path.open("rb") as fh:
        name = default_storage.save(f"classify/output/{uuid.uuid4().hex}/{csv_path.name}", File(fh))
    # Only while this run owns the job: another run's output is the one kept then.
    if not job.owned().update(output_file=name, output_summary=summary or {}):
        default_storage.delete(name)
        raise lifecycle.Superseded(f"job {job.pk}: another run owns it now")
    job.output_file.name = name
