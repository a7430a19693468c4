"""What the worker found wrong with the data: each dataset's quality report, and each trained model's suspected
label errors in its training rows (jobs.models imports both, so they are the app's models).

Runs in: the web process and the workers.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class DatasetQuality(models.Model):
    """A dataset's quality report (mlcore.quality), computed once by the worker after the dataset is made."""

    class Status(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        FAILED = "failed"

    dataset = models.OneToOneField("jobs.Dataset", on_delete=models.CASCADE, related_name="quality")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    report = models.JSONField(default=dict, blank=True, help_text="mlcore.quality.quality_report's; {} until ready.")
    error = models.TextField(blank=True, help_text="Why it could not be computed.")
    task_id = models.CharField(max_length=64, blank=True, help_text="The Celery task that computes it.")
    queued_at = models.DateTimeField(default=timezone.now, help_text="When its task was last sent.")
    computed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"quality of dataset #{self.dataset_id} ({self.status})"


class LabelIssues(models.Model):
    """The rows of a model's training data whose given label it rejects out of fold (mlcore.label_issues),
    found by the worker at the end of the job that trained it."""

    model = models.OneToOneField("jobs.ModelRecord", on_delete=models.CASCADE, related_name="label_issues")
    dataset = models.ForeignKey("jobs.Dataset", null=True, on_delete=models.SET_NULL, related_name="label_issues")
    summary = models.JSONField(help_text="method, rows, folds, per-class thresholds, out-of-fold accuracy, count")
    suspects = models.JSONField(
        help_text="[{row, text, given, suggested, confidence, suggested_probability}], most suspect first."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"label issues of model #{self.model_id} ({len(self.suspects)})"
