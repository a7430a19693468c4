"""Datasets, jobs, their metric points, and the models jobs produce; a job's state machine lives on Job; each
user's webhook signing secret.

Runs in: the web process and the workers. Each state change is one compare-and-set UPDATE (healthchecks keeps
its checks' state the same way), so two processes racing for a job cannot both win; what a change announces or
enqueues is the business of jobs.training, which calls these.
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from config import queues
from mlcore.catalogue import display_name
from mlcore.config import DistillConfig, TrainConfig, config_from_dict


class OwnedQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Rows a user may see: their own, or everything for staff."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        return self.filter(owner=user)


class Owned(models.Model):
    """A user's object: only its owner (and staff) see it, newest first."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="%(class)ss")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class Dataset(Owned):
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to="datasets/%Y/%m/")
    original_filename = models.CharField(max_length=255)
    format = models.CharField(max_length=10)
    text_column = models.CharField(max_length=200)
    label_column = models.CharField(max_length=200)
    num_rows = models.PositiveIntegerField()
    labels = models.JSONField(help_text="Label names, sorted.")
    label_counts = models.JSONField(help_text="Rows per label.")
    size_bytes = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return f"{self.name} ({self.num_rows} rows)"


class SweepQuerySet(OwnedQuerySet):
    def with_runs(self):
        """Each sweep's jobs and their models in two more queries, for services.sweep_runs."""
        return self.prefetch_related(
            models.Prefetch("jobs", queryset=Job.objects.select_related("result_model").order_by("pk"))
        )


class Sweep(Owned):
    """Fine-tune or distillation jobs launched together over a grid of hyperparameters (and of base models or
    teachers), ranked by their validation accuracy."""

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=[("finetune", "Fine-tune"), ("distill", "Distil")])
    dataset = models.ForeignKey(Dataset, null=True, on_delete=models.SET_NULL, related_name="sweeps")
    test_dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    base_model = models.CharField(max_length=300, blank=True, help_text="Fine-tune: the base model, unless swept.")
    teacher = models.ForeignKey(
        "ModelRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Distil: the teacher, unless swept.",
    )  # fmt: skip
    params = models.JSONField(help_text="The parameters every job shares.")
    grid = models.JSONField(
        help_text="{parameter: [values]}: the jobs are every combination of these; for a search, the value each "
        "trial drew, in job order."
    )
    search = models.JSONField(
        null=True, blank=True, help_text="A random search's {space, trials, seed} (mlcore.search); null for a grid."
    )
    webhook_url = models.URLField(max_length=500, blank=True, help_text="Each job's, when it ends.")

    objects = SweepQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} (sweep #{self.pk})"


class JobQuerySet(OwnedQuerySet):
    def claim(self, job_id: int, worker: str) -> bool:
        """Move a queued job to running on `worker`: whether this call won it."""
        now = timezone.now()
        return bool(
            self.filter(pk=job_id, status=Job.Status.QUEUED).update(
                status=Job.Status.RUNNING,
                started_at=now,
                heartbeat_at=now,
                worker=worker,
                attempts=F("attempts") + 1,
            )  # fmt: skip
        )

    def take_over(self, job: Job, worker: str) -> bool:
        """Give a running job whose worker is gone to `worker`: whether this call won it. The compare-and-set is
        on its attempts, so two deliveries of one task cannot both take it over."""
        return bool(
            self.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(
                worker=worker, attempts=job.attempts + 1, heartbeat_at=timezone.now()
            )
        )

    def stale(self):
        """Running jobs whose worker has shown no sign of life for DISTILLERY_STALE_AFTER seconds."""
        cutoff = timezone.now() - timedelta(seconds=settings.DISTILLERY_STALE_AFTER)
        return self.filter(status=Job.Status.RUNNING).filter(
            Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
        )

    def active_training(self, owner):
        """The user's queued and running training jobs (what DISTILLERY_MAX_ACTIVE_JOBS counts)."""
        training = [kind for kind, queue in Job.QUEUES.items() if queue == queues.GPU]
        return self.filter(owner=owner, kind__in=training, status__in=(Job.Status.QUEUED, Job.Status.RUNNING))


class Job(Owned):
    class Kind(models.TextChoices):
        FINETUNE = "finetune", "Fine-tune"
        DISTILL = "distill", "Distil"
        CLASSIFY = "classify", "Classify file"
        EVALUATE = "evaluate", "Evaluate on test rows"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    # A training job's progress bar: its training steps fill this share, the work after them (testing, saving,
    # measuring, storing) the rest, a step per phase (training.lifecycle.AFTER_TRAINING), so that the bar is full
    # only once the job has ended.
    TRAINING_SHARE = 0.9
    # The one place a job's lane is decided (training on the GPU lane, the rest on the CPU one): what users see and
    # order (training.queue_order). Its Celery queue may be narrower (Job.route: CUDA or GPU memory).
    QUEUES = {
        Kind.FINETUNE: queues.GPU, Kind.DISTILL: queues.GPU, Kind.CLASSIFY: queues.CPU, Kind.EVALUATE: queues.CPU,
    }  # fmt: skip
    # The hyperparameters of each training kind (a file classification has none).
    CONFIGS = {Kind.FINETUNE: TrainConfig, Kind.DISTILL: DistillConfig}
    # The order a queue's jobs start in (training.queue_order): higher priority first, then place in the queue.
    QUEUE_ORDER = ("-priority", "position", "pk")
    PRIORITIES = range(-10, 11)  # what `priority` may be; above 0 is for staff (training.queue_order)

    kind = models.CharField(max_length=10, choices=Kind.choices)
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs", help_text="Training data."
    )
    test_dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="test_jobs",
        help_text="An official test set (IMDB's, say) the final test runs on; without it a share of the training "
        "data is held out.",
    )  # fmt: skip
    base_model = models.CharField(max_length=300, blank=True, help_text="Catalogue id, hub id or folder.")
    base_record = models.ForeignKey(
        "ModelRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="finetune_jobs",
        help_text="Fine-tune: one of the user's stored models to start from (then base_model is its name).",
    )  # fmt: skip
    teacher = models.ForeignKey(
        "ModelRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="student_jobs"
    )
    params = models.JSONField(help_text="The full training configuration, defaults filled in.")
    # Batch file classification: the model that classifies, the uploaded texts and the CSV it writes.
    model = models.ForeignKey(
        "ModelRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="classify_jobs"
    )
    input_file = models.FileField(upload_to="classify/input/%Y/%m/", blank=True)
    input_filename = models.CharField(max_length=255, blank=True)
    output_file = models.FileField(upload_to="classify/output/%Y/%m/", blank=True)
    output_summary = models.JSONField(default=dict, blank=True, help_text="Its rows per label and first rows.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0..1; training's steps fill 0..TRAINING_SHARE.")
    phase = models.CharField(
        max_length=60, blank=True, help_text="What a running job is doing now (tokenising, training, testing, ...)."
    )
    error = models.TextField(blank=True, help_text="Why it failed, for its owner (training.failures).")
    error_detail = models.TextField(blank=True, help_text="Its traceback, which names server paths: for staff only.")
    cancel_requested = models.BooleanField(default=False)
    celery_task_id = models.CharField(max_length=64, blank=True, db_index=True)
    queue = models.CharField(max_length=20, blank=True, db_index=True, help_text="The Celery queue it waits in.")
    priority = models.SmallIntegerField(default=0, help_text="Higher starts first on its queue (Job.PRIORITIES).")
    position = models.BigIntegerField(
        null=True, blank=True, help_text="Place among the queued jobs of its priority: its id until its owner moves it."
    )
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Runs started; above 1 after a resume.")
    rewinds = models.JSONField(
        default=list, blank=True,
        help_text="[step, seq] per resume that dropped points: those of seq <= seq past step were a dead run's.",
    )  # fmt: skip
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life from the worker running it."
    )
    result_model = models.OneToOneField(
        "ModelRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_by"
    )
    sweep = models.ForeignKey(Sweep, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    webhook_url = models.URLField(
        max_length=500, blank=True, help_text="POSTed the job's final status, signed, when it ends."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()
    # The attempt a worker's run holds, set on the instance it claimed (training.lifecycle.claim_job); writes are
    # fenced by it (owned()). Not a column: refreshing the instance must not move the fence.
    run_attempt: int | None = None

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    def save(self, *args, **kwargs) -> None:
        if not self.queue:
            self.queue = self.route()
        super().save(*args, **kwargs)
        if self.position is None:  # a new job queues behind every job before it
            self.position = self.pk
            Job.objects.filter(pk=self.pk).update(position=self.pk)

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def lane(self) -> str:
        """The queue its owner sees it in and orders it on (training or CPU work)."""
        return self.QUEUES[self.kind]

    def route(self) -> str:
        """The Celery queue its run waits in: where only workers with the CUDA GPUs, GPU memory or devices a
        training job asks for look (config/queues.py); on device 'cpu' any worker's, as a file classification."""
        if self.kind not in self.CONFIGS or self.config.device == "cpu":
            return self.lane
        config, cuda = self.config, self.config.device.startswith("cuda") or self.config.gpu_memory_gb > 0
        devices = config.gpus_needed if cuda else config.devices
        return queues.training_queue(cuda=cuda, memory_gb=config.gpu_memory_gb, devices=devices)

    @cached_property
    def config(self) -> TrainConfig:
        """The job's hyperparameters as its kind's config (mlcore.config), parsed once. Raises ConfigError for
        params that do not fit the kind, KeyError for a file classification, which has none."""
        return config_from_dict(self.CONFIGS[self.kind], self.params)

    def owned(self):
        """The job's row while this run still owns it: running, at the attempt it claimed (`run_attempt`). Every
        write of a worker goes through it, so a worker that stalled and was replaced changes nothing."""
        attempt = self.attempts if self.run_attempt is None else self.run_attempt
        return Job.objects.filter(pk=self.pk, status=self.Status.RUNNING, attempts=attempt)

    def is_stale(self, now=None) -> bool:
        """The job's worker has not shown a sign of life for DISTILLERY_STALE_AFTER seconds."""
        last = self.heartbeat_at or self.started_at
        return last is not None and ((now or timezone.now()) - last).total_seconds() > settings.DISTILLERY_STALE_AFTER

    def jobs_ahead(self) -> int | None:
        """How many queued jobs (anyone's) start before this queued one on its queue (QUEUE_ORDER); None if it is
        not queued."""
        if self.status != self.Status.QUEUED:
            return None
        same_queue = [kind for kind, lane in self.QUEUES.items() if lane == self.lane]
        same = Q(priority=self.priority)
        before = (
            Q(priority__gt=self.priority)
            | same & Q(position__lt=self.position)
            | same & Q(position=self.position, pk__lt=self.pk)
        )
        return Job.objects.filter(before, status=self.Status.QUEUED, kind__in=same_queue).count()

    def finish(
        self, status: str, *, error: str = "", error_detail: str = "", result_model: ModelRecord | None = None
    ) -> bool:
        """Record the job's end: whether this call ended it. Only a running job, at the attempt this instance
        holds (owned()), can finish: a late call cannot undo a cancel, nor a replaced worker end its successor's
        run. The instance is refreshed either way."""
        ended = self.owned().update(
            status=status,
            error=error[:5000],
            error_detail=error_detail[-20000:],  # its end holds the exception that ended the job
            result_model=result_model,
            finished_at=timezone.now(),
            phase="",
            progress=1.0 if status == self.Status.SUCCEEDED else F("progress"),
        )
        self.refresh_from_db()
        return bool(ended)

    def request_cancel(self) -> bool:
        """Cancel a queued job at once (True), or flag a running one to stop at its next batch (False). The
        instance is refreshed."""
        ended = Job.objects.filter(pk=self.pk, status=self.Status.QUEUED).update(
            status=self.Status.CANCELLED, cancel_requested=True, finished_at=timezone.now()
        )
        if not ended:
            Job.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(cancel_requested=True)
        self.refresh_from_db()
        return bool(ended)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds of training left at the pace so far: for a running job past 1% of its steps, on its first
        run (a resumed one's pace since its restart says little); None otherwise."""
        if self.status != self.Status.RUNNING or self.attempts > 1 or not self.started_at:
            return None
        done = self.progress / self.TRAINING_SHARE if self.kind in self.CONFIGS else self.progress
        if not 0.01 <= done < 1:
            return None
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return round(max(elapsed, 0.0) * (1 - done) / done, 1)

    def to_event(self) -> dict:
        """The status message sent over websockets (and the shape the job page reads)."""
        return {
            "type": "status",
            "job": self.pk,
            "kind": self.kind,
            "status": self.status,
            "progress": round(self.progress, 4),
            "eta_seconds": self.eta_seconds,
            "phase": self.phase,
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "result_model": self.result_model_id,
            "attempts": self.attempts,
            "rewinds": self.rewinds,
            "output": bool(self.output_file),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def artifact_prefix() -> str:
    return f"models/{uuid.uuid4().hex}"


class ModelRecord(Owned):
    """A trained classifier: its lineage, hyperparameters, metrics and files in storage."""

    class Kind(models.TextChoices):
        FINETUNE = "finetune", "Fine-tuned"
        DISTILL = "distill", "Distilled"
        IMPORTED = "imported", "Imported"

    class Precision(models.TextChoices):
        FP32 = "fp32", "fp32"
        INT8 = "int8", "int8 (dynamic quantisation)"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    base_model = models.CharField(max_length=300, blank=True)
    teacher = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="students")
    dataset = models.ForeignKey(Dataset, null=True, on_delete=models.SET_NULL, related_name="models")
    params = models.JSONField()
    metrics = models.JSONField()
    label_names = models.JSONField()
    num_parameters = models.PositiveBigIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    artifact_prefix = models.CharField(max_length=200, default=artifact_prefix, unique=True)
    artifact_files = models.JSONField(default=list, help_text="File names under artifact_prefix.")
    serving_precision = models.CharField(
        max_length=4,
        choices=Precision.choices,
        default=Precision.FP32,
        help_text="How classify runs this model on CPU; int8 is set at registration when it measured faster "
        "and within DISTILLERY_INT8_MAX_DROP accuracy points of fp32 on the validation rows.",
    )
    temperature = models.FloatField(
        default=1.0, help_text="Served probabilities are softmax(logits / temperature): fitted on the validation "
        "rows by the training param calibrate, else 1.",
    )  # fmt: skip
    is_promoted = models.BooleanField(default=False)
    promoted_at = models.DateTimeField(null=True, blank=True)
    serving_speed = models.JSONField(
        default=dict,
        blank=True,
        help_text="CPU speed measured where the model serves, on demand (Compare's re-measure, "
        "serving.speed.measure): when, where, how, and each precision's latency and throughput; {} until then.",
    )
    # Its test rows' predictions (jobs.predictions): how many are stored (null: none yet), and the dataset whose
    # rows their positions point to (a given test set, or the training data a share was held out of).
    test_rows_count = models.PositiveIntegerField(null=True, blank=True, help_text="Test rows stored; null: none.")
    test_rows_dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta(Owned.Meta):
        constraints = [
            # Each user serves exactly one promoted model at a time.
            models.UniqueConstraint(fields=["owner"], condition=Q(is_promoted=True), name="one_promoted_per_owner")
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def source(self) -> str:
        """What the model grew from, as pages name it (base_model can be a server folder's path): "imported";
        a distilled model's named student, or "derived from its teacher"; else its base model's display name."""
        if self.kind == self.Kind.IMPORTED:
            return "imported"
        if self.kind == self.Kind.DISTILL:
            student = (self.params or {}).get("student") if isinstance(self.params, dict) else None
            return display_name(student) if student else "derived from its teacher"
        return display_name(self.base_model) or "—"

    @property
    def test_accuracy(self) -> float | None:
        """metrics' test/accuracy when it is a finite number; None otherwise (a record imported before
        distillery.json was checked may hold anything there)."""
        value = self.metrics.get("test/accuracy") if isinstance(self.metrics, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        try:
            number = float(value)
        except OverflowError:  # an int past a double's range
            return None
        return number if math.isfinite(number) else None


# The app's models kept in modules of their own (a job's points and log lines, the promotion history, each model's
# test rows, what the worker found wrong with the data, webhook keys); imported here so that they are the app's
# models.
from .points import JobLogLine, MetricPoint  # noqa: E402, F401
from .predictions import RowPrediction  # noqa: E402, F401
from .promotions import Promotion  # noqa: E402, F401
from .quality import DatasetQuality, LabelIssues  # noqa: E402, F401
from .webhook_secrets import WebhookSecret, random_webhook_secret  # noqa: E402, F401
