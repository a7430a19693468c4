"""Evaluate on test rows: a model stored before its test rows were kept is classified on them again, by a
worker on the CPU queue (as file classification is), and each row's prediction is stored with it (registry.rows).

Runs in: the web process (create_evaluate_job, which only queues) and the workers (run, from tasks.run_job).
The rows are found again as training split them (mlcore.train.split_indices with the model's own params), and
classified as classify answers them: the saved model in fp32 on CPU.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction

from mlcore.callbacks import Cancelled
from mlcore.config import ConfigError, config_from_dict
from mlcore.data import DataError, relabel, unknown_labels

from ..datasets.services import load_dataset
from ..models import Job, ModelRecord
from ..registry.rows import store_rows
from ..registry.storage import model_dir
from ..training import dispatch, events, lifecycle
from ..training.launch import start_on_commit

CHUNK = 256  # texts per predict call: progress is reported, and a cancel seen, between chunks
ACTIVE = (Job.Status.QUEUED, Job.Status.RUNNING)


def test_source(record: ModelRecord):
    """(training data, given test set or None, config) that the record's test rows were split with; a
    ValidationError saying why they cannot be found again (imported, its data deleted, params unreadable)."""
    if record.kind == ModelRecord.Kind.IMPORTED:
        raise ValidationError("an imported model's test rows are not known here: it was tested where it was trained")
    if record.dataset_id is None:
        raise ValidationError("its training data is deleted: its test rows cannot be found again")
    try:
        config = config_from_dict(Job.CONFIGS[record.kind], record.params)
    except ConfigError as exc:
        raise ValidationError(f"its hyperparameters cannot be read ({exc}): its test rows cannot be found") from None
    try:
        test_dataset = record.produced_by.test_dataset
    except ObjectDoesNotExist:  # its job is deleted: the rows are the held-out share, checked against the report
        test_dataset = None
    return record.dataset, test_dataset, config


def create_evaluate_job(owner, record: ModelRecord) -> Job:
    """Queue the evaluation of one of the owner's models on its test rows (sent once committed); the job
    already queued or running for it when there is one. A ValidationError when its rows cannot be found."""
    active = Job.objects.filter(kind=Job.Kind.EVALUATE, model=record, status__in=ACTIVE).first()
    if active is not None:
        return active
    dataset, test_dataset, _ = test_source(record)
    dispatch.check_reachable()  # Redis down: nothing stored, a 503 (jobs/outages.py)
    job = Job.objects.create(
        owner=owner, kind=Job.Kind.EVALUATE, model=record, base_model=record.name, dataset=dataset,
        test_dataset=test_dataset, params={}, celery_task_id=uuid.uuid4().hex,
    )  # fmt: skip
    start_on_commit(job)
    return job


def active_job(record: ModelRecord) -> Job | None:
    """The evaluation queued or running for the record, if any (its page says so)."""
    return Job.objects.filter(kind=Job.Kind.EVALUATE, model=record, status__in=ACTIVE).order_by("-pk").first()


def run(job: Job) -> None:
    """Run a claimed evaluation; how it ended is recorded whatever happens (lifecycle.running)."""
    with lifecycle.running(job):
        evaluate_rows(job)


def evaluate_rows(job: Job) -> None:
    """Find the model's test rows again, classify them in chunks, store them with the model, end the job."""
    from mlcore.inference import Classifier  # torch: in the worker only, as each of these
    from mlcore.predictions import classify_rows  # torch
    from mlcore.train import split_indices, splits_at  # torch

    record = job.model
    dataset, test_dataset, config = test_source(record)
    data = load_dataset(dataset)
    if unknown_labels(data, record.label_names):
        raise DataError("the training data's labels are not the model's: its test rows cannot be labelled")
    data = relabel(data, record.label_names)  # the model's label ids, matched by name (a student's are its teacher's)
    given = load_dataset(test_dataset) if test_dataset is not None else None
    positions = split_indices(data, config, given)["test"]
    rows = splits_at(data, {"train": [], "valid": [], "test": positions}, given)["test"]
    expected = _tested_rows(record)
    if expected is not None and expected != len(positions):
        raise DataError(
            f"{len(positions)} test rows found again, but the model was tested on {expected}: its test set is not "
            "known any more (was its job, which named it, deleted?)"
        )
    classifier = Classifier.load(model_dir(record), device="cpu")
    found = []
    for start in range(0, len(positions), CHUNK):
        if lifecycle.cancel_requested(job.pk):
            raise Cancelled(f"cancelled after {start} of {len(positions)} rows")
        end = start + CHUNK
        found += classify_rows(classifier, positions[start:end], rows.texts[start:end], rows.labels[start:end])
        job.progress = min(end, len(positions)) / max(len(positions), 1)
        lifecycle.set_progress(job, job.progress)
        events.broadcast_status(job)
    with transaction.atomic():  # stored only while this run owns the job
        lifecycle.fence(job)
        store_rows(record, found, test_dataset or dataset)
    lifecycle.finish_job(job, Job.Status.SUCCEEDED)


def _tested_rows(record: ModelRecord) -> int | None:
    """How many test rows the record's stored report counted, None without one."""
    report = (record.metrics or {}).get("test/report") if isinstance(record.metrics, dict) else None
    matrix = report.get("confusion_matrix") if isinstance(report, dict) else None
    try:
        return sum(sum(row) for row in matrix) if matrix else None
    except TypeError:
        return None
