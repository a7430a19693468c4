"""Webhooks: a job that names a URL has its final status POSTed there, signed with its owner's webhook secret.

Runs in: the web process (check_url at launch, notify on cancel) and the workers (notify on finish; post from
the notify_webhook task, which Celery retries with backoff while the receiver is down).

Where a webhook may go is jobs.training.webhook_targets' business (public addresses only, checked at launch and
again on the address each delivery connects to). What a receiver gets:

    POST <webhook_url>
    Content-Type: application/json
    X-Distillery-Event: job.finished
    X-Distillery-Timestamp: 1767225600                      (Unix seconds when this delivery was signed)
    X-Distillery-Signature: sha256=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>

    {"job": 12, "status": "succeeded", ..., "test_accuracy": 0.91}

The secret is the owner's webhook secret (the whole string, "whsec_" included; /account/token/ or
GET /api/account/webhook-secret/), not their API token. To verify, as with Stripe's and GitHub's webhooks:

    timestamp = request.headers["X-Distillery-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, "sha256").hexdigest()
    ok = hmac.compare_digest(expected, request.headers["X-Distillery-Signature"])
    ok = ok and abs(time.time() - int(timestamp)) <= 300    # 5 minutes: an old delivery replayed fails

Compute it over the raw body as received, before any JSON parsing. A retried delivery is signed afresh (a new
timestamp).
Redirects are not followed: a 3xx, like a 4xx, is the receiver's final answer.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time

from django.core.exceptions import ValidationError
from django.db import transaction

from .. import accounts
from ..models import Job
from . import dispatch, webhook_targets

log = logging.getLogger(__name__)


class WebhookUnavailable(Exception):
    """The webhook's server could not be reached or answered 5xx: worth trying again later."""


def check_url(url: str) -> None:
    """At launch: an http(s) URL, on one of DISTILLERY_WEBHOOK_HOSTS when the operator names some, whose host is
    or resolves to addresses webhooks may reach (webhook_targets); else a ValidationError on webhook_url.

    A name that does not resolve now is taken: the receiver may not exist yet when a long job starts, and a DNS
    hiccup should not refuse a launch. Nothing is lost by it, since each delivery vets the name again."""
    if not url:
        return
    try:
        webhook_targets.vet(url)
    except webhook_targets.RefusedTarget as exc:
        raise ValidationError({"webhook_url": str(exc)}) from None
    except webhook_targets.Unresolvable:
        pass


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


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """sha256=HMAC-SHA256(secret, b"<timestamp>." + payload): the timestamp signed with the body, against replay."""
    message = f"{timestamp}.".encode() + payload
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def post(job_id: int, *, timeout: float = 10.0) -> int | None:
    """POST a finished job's status to its webhook_url; the receiver's HTTP status, or None when nothing was sent
    (the job or its URL is gone, or its host is refused now).

    1. Vet the URL again (webhook_targets.vet: one lookup, every address checked), since the name may resolve
       elsewhere than at launch: a refused address is logged and dropped, not retried, as waiting will not make
       it acceptable;
    2. POST, signed, to an address that lookup gave (no second lookup), following no redirect: a 3xx or 4xx is
       the receiver's final answer;
    3. a 5xx, a name that does not resolve or a network error raises WebhookUnavailable (Celery retries)."""
    job = Job.objects.select_related("result_model", "owner").filter(pk=job_id).first()
    if job is None or not job.webhook_url:
        return None
    url = job.webhook_url
    try:
        target = webhook_targets.vet(url)
    except webhook_targets.RefusedTarget as exc:
        log.warning("job %s: webhook %s not sent: %s", job_id, url, exc)
        return None
    except webhook_targets.Unresolvable as exc:
        raise WebhookUnavailable(str(exc)) from None
    payload, timestamp = body(job), int(time.time())
    connection = target.connection(timeout)
    try:
        connection.request("POST", target.path, body=payload, headers={
            "Content-Type": "application/json", "User-Agent": "Distillery", "X-Distillery-Event": "job.finished",
            "X-Distillery-Timestamp": str(timestamp),
            "X-Distillery-Signature": signature(accounts.webhook_secret(job.owner).secret, timestamp, payload),
        })  # fmt: skip
        response = connection.getresponse()
        status, location = response.status, response.getheader("Location")
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookUnavailable(f"{url}: {exc}") from None
    finally:
        connection.close()
    if status >= 500:
        raise WebhookUnavailable(f"{url} answered {status}")
    if status >= 400:
        log.warning("job %s: webhook %s refused it with %s", job_id, url, status)
    elif status >= 300:
        log.warning("job %s: webhook %s answered %s to %s; redirects are not followed", job_id, url, status, location)
    return status
