"""Celery tasks: thin wrappers that load a job, claim it, and hand it to the runner."""

from celery import shared_task

from config.celery import app  # noqa: F401  (re-exported for services.request_cancel)

from . import runner, services
from .models import Job


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self, job_id: int) -> str:
    """Run one fine-tune or distillation job on this worker."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    job = services.claim_job(job_id, worker=self.request.hostname or "", redelivered=redelivered)
    if job is None:
        return "skipped"
    runner.execute(job)
    return Job.objects.values_list("status", flat=True).get(pk=job_id)


@shared_task
def reap_stale_jobs() -> list[int]:
    """Periodic (Celery beat): give jobs whose worker machine went silent to a live worker."""
    return services.requeue_stale_jobs()


@shared_task
def drop_stale_held_uploads() -> int:
    """Periodic (Celery beat): remove uploads held for a column choice longer than services.HELD_FOR."""
    return services.drop_stale_held()


@shared_task(
    bind=True, acks_late=True, autoretry_for=(services.WebhookUnavailable,), max_retries=6,
    retry_backoff=5, retry_backoff_max=600, retry_jitter=True,
)  # fmt: skip
def notify_webhook(self, job_id: int) -> int | None:
    """POST a finished job's status to its webhook; retried with backoff while its server is unavailable."""
    return services.post_webhook(job_id)
