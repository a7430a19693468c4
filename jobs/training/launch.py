"""Launching training jobs, and what a user does to them from the web: cancel, delete.

Runs in: the web process. A job is validated (its params as its kind's config, its base model or teacher, the
user's quotas of active jobs and storage, its webhook), saved queued, and sent to its queue and announced once
the transaction commits. While the broker (Redis) cannot be reached nothing is saved: the launch raises kombu's
OperationalError, which the web answers with a 503 (jobs/outages.py).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from mlcore import catalogue, recipes
from mlcore.config import ConfigError, config_defaults, config_fields

from ..files import checkpoint_dir, is_file
from ..models import Dataset, Job, ModelRecord, Sweep
from ..quota import check_room
from ..registry import students
from . import checkpoint_mirror, dispatch, events, queue_order, webhooks, workers

log = logging.getLogger(__name__)
UNSENT = "the job could not be sent to its queue: Redis became unreachable as it was launched; launch it again"


@dataclasses.dataclass(frozen=True)
class LaunchSpec:
    """What a user asks to train: the same for one job (create_job) and for every job of a sweep (create_sweep),
    as the API's serializers and the dashboard's form send it."""

    kind: str
    dataset: Dataset
    params: dict = dataclasses.field(default_factory=dict)
    base_model: str = ""
    base_record: ModelRecord | None = None  # fine-tune: one of the user's stored models, chosen by id
    teacher: ModelRecord | None = None
    recipe: str = ""
    test_dataset: Dataset | None = None
    webhook_url: str = ""
    priority: int = 0  # Job.priority: higher starts first (queue_order.check_priority)

    @classmethod
    def take(cls, data: dict) -> tuple[LaunchSpec, dict]:
        """The spec made of `data`'s launch fields, and the rest of `data` (a sweep's grid, search, name)."""
        names = {f.name for f in dataclasses.fields(cls)}
        spec = cls(**{k: v for k, v in data.items() if k in names and v is not None})
        return spec, {k: v for k, v in data.items() if k not in names}

    def with_recipe(self, *, keep_out=()) -> LaunchSpec:
        """The spec with its recipe's parameters filled in under the ones it sets (and none of `keep_out`, the
        names a sweep varies), the recipe then spent."""
        if not self.recipe:
            return self
        preset = recipe_params(self.recipe, self.kind)
        params = {**{k: v for k, v in preset.items() if k not in keep_out}, **(self.params or {})}
        return dataclasses.replace(self, params=params, recipe="")


def create_job(owner, spec: LaunchSpec, *, sweep: Sweep | None = None) -> Job:
    """Validate a job request, save it queued, and enqueue it (and announce it) once the transaction commits.
    A recipe (mlcore.recipes) fills in the parameters the request leaves out."""
    if spec.kind not in Job.CONFIGS:
        hint = "; classify a file with POST /api/classify/file/" if spec.kind == Job.Kind.CLASSIFY else ""
        raise ValidationError({"kind": f"unknown job kind {spec.kind!r}; use finetune or distill{hint}"})
    spec = spec.with_recipe()
    params = {**platform_defaults(), **(spec.params or {})}
    try:
        config = Job(kind=spec.kind, params=params).config
    except ConfigError as exc:
        raise ValidationError({"params": str(exc)}) from None
    check_devices(config)
    cuda, gpus = config.device.startswith("cuda"), config.gpus_needed
    if why := workers.refusal(cuda=cuda, memory_gb=config.gpu_memory_gb, gpus=gpus):
        raise ValidationError({"params": (
            f"device {config.device!r}, gpu_memory_gb {config.gpu_memory_gb}: {why}; use device 'auto' (a GPU "
            "wherever the worker has one) or 'cpu', and gpu_memory_gb 0"
        )})  # fmt: skip
    base_model = _check_model(spec, config)
    check_active_jobs(owner, adding=1)
    queue_order.check_priority(owner, spec.priority)
    check_room(owner)  # its model will count towards the owner's storage quota
    if sweep is None:  # a sweep's jobs share its URL, which create_sweep checked once for all of them
        webhooks.check_url(spec.webhook_url)
    _check_test_dataset(spec)
    dispatch.check_reachable()  # last: Redis down creates nothing (a sweep's transaction rolls back all its jobs)

    task_id = uuid.uuid4().hex
    with transaction.atomic():
        job = Job.objects.create(
            owner=owner, kind=spec.kind, dataset=spec.dataset, base_model=base_model, base_record=spec.base_record,
            teacher=spec.teacher,
            params=dataclasses.asdict(config), celery_task_id=task_id, sweep=sweep, test_dataset=spec.test_dataset,
            webhook_url=spec.webhook_url, priority=spec.priority,
        )  # fmt: skip
        start_on_commit(job)
    return job


def start_on_commit(job: Job) -> None:
    """Send the job to its queue and announce it once it is committed: a job rolled back (with its sweep, say)
    was never there. Callers check first that the broker answers (dispatch.check_reachable)."""
    transaction.on_commit(lambda: _send(job))
    transaction.on_commit(lambda: events.broadcast_status(job))
    transaction.on_commit(lambda: queue_order.broadcast(job.lane))


def _send(job: Job) -> None:
    """Send a committed job's run. Should the broker have gone since the launch checked it, no worker will ever
    get the job: it fails now, saying so, rather than wait as queued for good (and the job's other commit hooks,
    a sweep's other jobs, still run)."""
    try:
        dispatch.run(job, job.celery_task_id)
    except OperationalError as exc:
        log.warning("job %s: could not be sent to its queue (%s); failed it", job.pk, exc)
        Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
            status=Job.Status.FAILED, error=UNSENT, finished_at=timezone.now()
        )
        job.refresh_from_db()


def check_devices(config) -> None:
    """A job's device and devices against the online workers (jobs.training.workers): CUDA needs a worker with a
    GPU, and devices=N on CUDA one worker with N GPUs (counted from the device's index); devices=N on CPU is N
    processes sharing the worker's cores, at most DISTILLERY_MAX_CPU_DEVICES. Device 'auto' is CUDA for this
    check whenever a worker with a GPU is online, since such a worker would run the job on its GPUs."""
    most = workers.most_cuda_devices()
    on_cuda = config.device.startswith("cuda")
    if on_cuda and most == 0:
        raise ValidationError({"params": (
            f"device {config.device!r}: no worker with a CUDA GPU is online; use device 'auto' (a GPU wherever the "
            "worker has one) or 'cpu'"
        )})  # fmt: skip
    if config.devices == 1:
        return
    if on_cuda or (config.device == "auto" and most > 0):
        needed = config.gpus_needed
        if most < needed:
            raise ValidationError({"params": (
                f"devices={config.devices} on device {config.device!r} needs a worker with {needed} CUDA GPUs, and "
                f"the most an online worker has is {most}: ask for fewer devices, or device 'cpu' for "
                f"{config.devices} processes on CPU"
            )})  # fmt: skip
    elif config.devices > settings.DISTILLERY_MAX_CPU_DEVICES:
        raise ValidationError({"params": (
            f"devices={config.devices} on CPU: a CPU job runs at most {settings.DISTILLERY_MAX_CPU_DEVICES} "
            "processes here (DISTILLERY_MAX_CPU_DEVICES)"
        )})  # fmt: skip


def _check_model(spec: LaunchSpec, config) -> str:
    """The job's base_model: a fine-tune's catalogue, hub or allowed folder model; a distillation's teacher's
    name (and its student, when it names one, is checked the same way)."""
    if spec.base_record is not None:
        if spec.kind != Job.Kind.FINETUNE or spec.base_model:
            raise ValidationError({"base_record": "a fine-tune starts from a base_model or a base_record, not both"})
        if sorted(spec.base_record.label_names) != sorted(spec.dataset.labels):
            labels, records = spec.dataset.labels, spec.base_record.label_names
            raise ValidationError({"dataset": f"the dataset's labels {labels} differ from the model's {records}"})
        return spec.base_record.name
    if spec.kind == Job.Kind.FINETUNE:
        return offered_model(spec.base_model or catalogue.BUNDLED_ID, "base_model")
    if getattr(config, "student", None):
        offered_model(config.student, "params")
    if spec.teacher is None:
        raise ValidationError({"teacher": "a distillation job needs a teacher model"})
    if sorted(spec.teacher.label_names) != sorted(spec.dataset.labels):
        labels, teachers = spec.dataset.labels, spec.teacher.label_names
        raise ValidationError({"dataset": f"the dataset's labels {labels} differ from the teacher's {teachers}"})
    if config.student is None and config.student_layers is not None:  # more layers than the teacher has, now
        students.student_plan(spec.teacher, config.student_layers)
    return spec.teacher.name


def offered_model(name: str, field: str) -> str:
    """A model a user may train from: a catalogue id available here, a hub model in this machine's Hugging Face
    cache or, while the server is online, one the hub has, or a folder under DISTILLERY_MODEL_ROOTS (symlinks
    resolved first; stored resolved). Any other folder name, whether or not it exists, gets the same answer, so
    that nobody learns which server paths exist."""
    name = name.strip()
    known = catalogue.entry(name)
    if known is not None:
        if not known["available"]:
            raise ValidationError({field: f"{known['id']} is not available on this server (offline, or not installed)"})
        return name
    if catalogue.is_hub_id(name):
        if catalogue.hub_cached(name):
            return name
        if not catalogue.hub_online():
            raise ValidationError({field: (
                f"{name} is a hub model that is not in this server's model cache, and this server is offline "
                "(HF_HUB_OFFLINE): choose a model of the catalogue (GET /api/catalogue/) or have the operator "
                "download it"
            )})  # fmt: skip
        problem = catalogue.hub_problem(name)  # a misspelt id is refused now, not when the worker fails on it
        if problem is not None:
            raise ValidationError({field: problem})
        return name
    folder = Path(name).expanduser().resolve()
    if any(folder.is_relative_to(root) for root in settings.DISTILLERY_MODEL_ROOTS) and is_file(folder / "config.json"):
        return str(folder)
    raise ValidationError({field: (
        f"{name!r} is not a model this server offers: give a catalogue id (GET /api/catalogue/), a hub id such as "
        "bert-base-uncased, or a model folder under the folders the operator allows (DISTILLERY_MODEL_ROOTS)"
    )})  # fmt: skip


def _check_test_dataset(spec: LaunchSpec) -> None:
    if spec.test_dataset is None:
        return
    unknown = sorted(set(spec.test_dataset.labels) - set(spec.dataset.labels))
    if unknown:
        raise ValidationError(
            {"test_dataset": f"its labels {unknown} are not among the training dataset's {spec.dataset.labels}"}
        )


def check_active_jobs(owner, *, adding: int, what: str = "another") -> None:
    """Refuse jobs that would take a user past DISTILLERY_MAX_ACTIVE_JOBS queued or running training jobs (0: no
    limit), so that one user's sweeps cannot fill the GPU queue for everyone."""
    limit = settings.DISTILLERY_MAX_ACTIVE_JOBS
    if not limit:
        return
    count = Job.objects.active_training(owner).count()
    if count + adding > limit:
        jobs = f"{adding} job{'s' if adding != 1 else ''}"
        raise ValidationError({
            "detail": f"you have {count} jobs queued or running and {what} {jobs} would pass the limit of {limit}: "
            "wait for some to finish, or cancel some"
        })  # fmt: skip


def recipe_params(name: str, kind: str) -> dict:
    """The parameters recipe `name` sets for a job kind; a ValidationError naming the known recipes otherwise."""
    try:
        return recipes.recipe(name).params(kind)
    except ValueError as exc:
        raise ValidationError({"recipe": str(exc)}) from None


def platform_defaults() -> dict:
    """Where a job's default differs from mlcore's: jobs write checkpoints (mlcore's own default is none), so a
    worker lost mid-run costs at most DISTILLERY_CHECKPOINT_EVERY steps."""
    return {"checkpoint_every": settings.DISTILLERY_CHECKPOINT_EVERY}


def job_defaults() -> dict:
    """Each training kind's parameters with the defaults a job gets."""
    return {kind: config_defaults(config) | platform_defaults() for kind, config in Job.CONFIGS.items()}


def job_parameters() -> dict:
    """Each training kind's parameters: type, default (a job's), help, range and choices (mlcore.config's
    metadata)."""
    ours = platform_defaults()
    return {
        kind: [{**field, "default": ours.get(field["name"], field["default"])} for field in config_fields(config)]
        for kind, config in Job.CONFIGS.items()
    }


def job_recipes() -> dict:
    """Each recipe's summary and the parameters it sets per job kind (over job_defaults())."""
    return {name: r.to_dict() for name, r in recipes.RECIPES.items()}


def request_cancel(job: Job) -> Job:
    """Cancel a queued job at once (its task is revoked); ask a running one to stop at its next batch."""
    ended = job.request_cancel()
    if ended:
        dispatch.revoke(job.celery_task_id)
    events.broadcast_status(job)
    if ended:
        queue_order.broadcast(job.lane, job.owner_id)
        webhooks.notify(job)
    return job


def delete_job(job: Job) -> None:
    """Delete a finished job with its metric points, its files (a file classification's input and CSV) and
    any checkpoint left behind. The model it trained stays."""
    files = [f.name for f in (job.input_file, job.output_file) if f]
    checkpoints = checkpoint_dir(job.pk)
    # Finished is for good (only a running job is ever requeued), so the filter is the whole guard.
    deleted, _ = Job.objects.filter(pk=job.pk, status__in=Job.FINISHED).delete()
    if not deleted:
        raise ValidationError({"status": f"the job is {job.status}: cancel it first, then delete it"})

    def gone() -> None:
        for name in files:
            default_storage.delete(name)
        shutil.rmtree(checkpoints, ignore_errors=True)
        checkpoint_mirror.forget(job.pk)

    transaction.on_commit(gone)
