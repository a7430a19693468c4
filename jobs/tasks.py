"""Celery tasks: thin wrappers that take ids, load what they need and call the domain.

Runs in: the workers. Nothing imports this module but Celery: the web side sends tasks by name
(training.dispatch), which is also where RUN_JOB and NOTIFY_WEBHOOK are named.
"""

from celery import shared_task
from celery.signals import celeryd_after_setup, worker_ready, worker_shutdown

from config import queues

from .datasets import quality
from .datasets.held import drop_stale_held
from .models import Job
from .serving import batch, evaluate
from .training import dispatch, lifecycle, runner, webhooks, workers

_announcing = {}  # hostname -> the event that stops its announcements


@celeryd_after_setup.connect
def _consume_what_fits(sender, instance, **kwargs) -> None:
    """A training worker (one consuming `gpu`) with a CUDA GPU also consumes `cuda` and the GPU-memory queues its
    GPU holds (config/queues.py): the broker then never hands it a job that needs more."""
    if queues.GPU in instance.app.amqp.queues.consume_from:
        for name in workers.declared().training_queues():
            instance.app.amqp.queues.select_add(name)


@worker_ready.connect
def _announce(sender, **kwargs) -> None:
    """Tell the web process this worker is online, its GPUs and their memory (jobs asking for CUDA or GPU memory
    need a worker that has them)."""
    capacity = workers.declared()
    _announcing[sender.hostname] = workers.keep_announcing(
        sender.hostname, cuda_devices=capacity.cuda_devices, gpu_memory_gb=capacity.gpu_memory_gb
    )


@worker_shutdown.connect
def _leave(sender, **kwargs) -> None:
    if (stop := _announcing.pop(sender.hostname, None)) is not None:
        stop.set()
    workers.forget(sender.hostname)


@shared_task(name=dispatch.RUN_JOB, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self, job_id: int) -> str:
    """Run the next job of this message's queue (fine-tune, distillation, file classification or evaluation) on
    this worker."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    # The message is a turn on its queue: it may start another job than job_id (training.queue_order).
    job = lifecycle.claim_turn(self.request.id, worker=self.request.hostname or "", redelivered=redelivered)
    if job is None:
        return "skipped"
    {Job.Kind.CLASSIFY: batch.run, Job.Kind.EVALUATE: evaluate.run}.get(job.kind, runner.execute)(job)
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


@shared_task
def reap_stale_jobs() -> list[int]:
    """Periodic (Celery beat): give jobs whose worker machine went silent to a live worker."""
    return lifecycle.requeue_stale_jobs()


@shared_task
def drop_stale_held_uploads() -> int:
    """Periodic (Celery beat): remove uploads held for a column choice longer than datasets.held.HELD_FOR."""
    return drop_stale_held()


@shared_task(
    name=dispatch.NOTIFY_WEBHOOK, bind=True, acks_late=True, autoretry_for=(webhooks.WebhookUnavailable,),
    max_retries=6, retry_backoff=5, retry_backoff_max=600, retry_jitter=True,
)  # fmt: skip
def notify_webhook(self, job_id: int) -> int | None:
    """POST a finished job's status to its webhook; retried with backoff while its server is unavailable."""
    return webhooks.post(job_id)


@shared_task(name=dispatch.DATASET_QUALITY, acks_late=True)
def dataset_quality(dataset_id: int) -> str:
    """Compute and store a dataset's quality report (duplicates, conflicting labels, markup, lengths, balance)."""
    return quality.compute_report(dataset_id)
