"""Webhooks: a job that names a URL has its final status POSTed there, signed with its owner's API token.

Runs in: the web process (check_url at launch, notify on cancel) and the workers (notify on finish; post from
the notify_webhook task, which Celery retries with backoff while the receiver is down).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from .. import accounts
from ..models import Job
from . import dispatch

log = logging.getLogger(__name__)


class WebhookUnavailable(Exception):
    """The webhook's server could not be reached or answered 5xx: worth trying again later."""


def check_url(url: str) -> None:
    """An http(s) URL, on one of DISTILLERY_WEBHOOK_HOSTS when the operator names some."""
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"webhook_url": "give an http:// or https:// URL"})
    allowed = settings.DISTILLERY_WEBHOOK_HOSTS
    if allowed and parts.hostname not in allowed:
        raise ValidationError({"webhook_url": f"{parts.hostname} is not a webhook host here; ask the operator"})


def notify(job: Job) -> None:
    """Queue the POST to the job's webhook once its end is committed."""
    if job.webhook_url:
        transaction.on_commit(lambda: dispatch.notify_webhook(job.pk))


def body(job: Job) -> bytes:
    """The job's final status message (as the websocket sends it) with its model's test accuracy."""
    event = job.to_event()
    record = job.result_model
    event["test_accuracy"] = record.metrics.get("test/accuracy") if record is not None else None
    return json.dumps(event, sort_keys=True).encode()


def signature(job: Job, payload: bytes) -> str:
    """sha256=HMAC-SHA256(payload) keyed with the owner's API token, which the receiver knows to check it."""
    key = accounts.api_token(job.owner)
    return "sha256=" + hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()


def post(job_id: int, *, timeout: float = 10.0) -> int | None:
    """POST a finished job's status to its webhook_url; the HTTP status (None when the job or its URL is gone).
    A 4xx is the receiver's final answer; a 5xx or a network error raises WebhookUnavailable (Celery retries)."""
    job = Job.objects.select_related("result_model", "owner").filter(pk=job_id).first()
    if job is None or not job.webhook_url:
        return None
    payload = body(job)
    request = urllib.request.Request(job.webhook_url, data=payload, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "Distillery", "X-Distillery-Event": "job.finished",
        "X-Distillery-Signature": signature(job, payload),
    })  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise WebhookUnavailable(f"{job.webhook_url} answered {exc.code}") from None
        log.warning("job %s: webhook %s refused it with %s", job_id, job.webhook_url, exc.code)
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookUnavailable(f"{job.webhook_url}: {exc}") from None
