"""A webhook is signed with its owner's webhook secret, not their API token, over "<timestamp>." + body, the
timestamp sent beside it (X-Distillery-Timestamp) so a receiver can refuse a replay; a new secret signs from the
moment it is made. Receivers are real HTTP servers on loopback, allowed here as an on-premises operator would."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from rest_framework.authtoken.models import Token

from jobs import accounts
from jobs.models import Job, WebhookSecret
from jobs.training import webhooks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_receivers(settings):
    settings.DISTILLERY_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def finished(trained_model, receiver):
    job = trained_model.produced_by
    Job.objects.filter(pk=job.pk).update(webhook_url=receiver.url)
    return job


def _hmac(key: str, message: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _delivered(job, receiver) -> tuple[str, str, bytes]:
    """Deliver the job's webhook; the (timestamp, signature, body) the receiver got."""
    assert webhooks.post(job.pk) == 200
    headers, body = receiver.requests[-1]
    return headers["X-Distillery-Timestamp"], headers["X-Distillery-Signature"], body


def test_the_final_status_is_signed_with_the_webhook_secret_over_the_timestamp_and_body(finished, receiver, user):
    before = int(time.time())
    timestamp, signature, body = _delivered(finished, receiver)
    after = int(time.time())

    secret = WebhookSecret.objects.get(user=user).secret  # made at the first delivery
    assert secret.startswith("whsec_") and len(secret) > 40
    assert before <= int(timestamp) <= after
    assert signature == _hmac(secret, f"{timestamp}.".encode() + body)
    assert signature != _hmac(secret, body)  # the timestamp is part of what is signed
    event = json.loads(body)
    assert (event["job"], event["status"], event["test_accuracy"]) == (finished.pk, "succeeded", 1.0)
    assert receiver.requests[-1][0]["X-Distillery-Event"] == "job.finished"


def test_the_api_token_is_not_the_key_and_a_new_token_leaves_the_key_alone(finished, receiver, user):
    timestamp, signature, body = _delivered(finished, receiver)
    assert not Token.objects.filter(user=user).exists()  # signing never needed one
    token = accounts.api_token(user)
    assert signature not in (_hmac(token, body), _hmac(token, f"{timestamp}.".encode() + body))

    accounts.new_api_token(user)
    timestamp, signature, body = _delivered(finished, receiver)

    assert signature == _hmac(accounts.webhook_secret(user).secret, f"{timestamp}.".encode() + body)


def test_a_new_secret_signs_from_then_on_and_the_old_one_no_longer_verifies(finished, receiver, user):
    old = accounts.webhook_secret(user).secret

    new = accounts.new_webhook_secret(user).secret
    timestamp, signature, body = _delivered(finished, receiver)

    assert new != old
    assert signature == _hmac(new, f"{timestamp}.".encode() + body)
    assert signature != _hmac(old, f"{timestamp}.".encode() + body)


def test_each_user_signs_with_a_secret_of_their_own(user, other_user):
    assert accounts.webhook_secret(user).secret != accounts.webhook_secret(other_user).secret
    assert accounts.webhook_secret(user).secret == accounts.webhook_secret(user).secret  # made once
