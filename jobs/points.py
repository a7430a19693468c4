"""What a running job reports, each with a seq of its own that orders it and lets a page ask for what it missed:
its metric points and its log lines (jobs.models imports both, so they are the app's models).

Runs in: the web process and the workers.
"""

from __future__ import annotations

from django.db import models


class MetricPoint(models.Model):
    """One batch's (or one evaluation's) metrics; `seq` orders a job's points without gaps."""

    class Kind(models.TextChoices):
        TRAIN = "train"
        VAL = "val"
        TEST = "test"

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="metrics")
    seq = models.PositiveIntegerField()
    step = models.PositiveIntegerField()
    kind = models.CharField(max_length=5, choices=Kind.choices)
    values = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "seq"]
        get_latest_by = "seq"
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="metric_seq_unique_per_job")]

    def to_event(self) -> dict:
        return {
            "type": "metric",
            "job": self.job_id,
            "seq": self.seq,
            "step": self.step,
            "kind": self.kind,
            "values": self.values,
        }


class JobLogLine(models.Model):
    """A record of the worker's log for a job (training.joblog), sent to its page as metric points are: `seq`
    orders a job's lines, each sent once. About the newest LOG_LINES_KEPT stay."""

    LOG_LINES_KEPT = 1000
    MESSAGE_CHARS = 2000  # a line longer than this is cut

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="log_lines")
    seq = models.PositiveIntegerField()
    logged_at = models.DateTimeField(help_text="When the record was made.")
    level = models.CharField(max_length=10, help_text="INFO, WARNING, ERROR, ...")
    logger = models.CharField(max_length=200)
    message = models.TextField()

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="log_seq_unique_per_job")]

    def to_event(self) -> dict:
        return {
            "type": "log",
            "job": self.job_id,
            "seq": self.seq,
            "time": self.logged_at.isoformat(),
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
        }
