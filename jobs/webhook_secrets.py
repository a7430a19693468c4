"""A user's key for webhook signatures (jobs.models imports it, so it is one of the app's models).

Runs in: the web process (accounts) and the workers (training.webhooks sign with it).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def random_webhook_secret() -> str:
    """32 random bytes, prefixed so that people and secret scanners can tell it from an API token."""
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookSecret(models.Model):
    """A user's key for webhook signatures (jobs.training.webhooks), apart from their API token: a receiver that
    checks signatures holds this and no API access, and a new API token leaves the receivers' key alone."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_secret")
    secret = models.CharField(max_length=64, default=random_webhook_secret)
    created_at = models.DateTimeField(default=timezone.now, help_text="When it was made; a rotation makes it anew.")

    def __str__(self) -> str:
        return f"webhook secret of {self.user} (since {self.created_at:%Y-%m-%d})"
