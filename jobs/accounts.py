"""Accounts: API tokens, the key to every script's access (REST, websockets, the classify fast path), and webhook
secrets, the key to webhook signatures alone (a receiver that checks them gets no API access).

Runs in: the web process and the workers. A leaf: it imports nothing of jobs but the models.
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework.authtoken.models import Token

from .models import WebhookSecret, random_webhook_secret


def user_for_token(key: str):
    """The active user whose API token this is, or None."""
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token is not None and token.user.is_active else None


def api_token(user) -> str:
    """The user's API token, made on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def new_api_token(user) -> str:
    """Replace the user's API token: the old one stops working at once (jobs.signals tells the fast path)."""
    Token.objects.filter(user=user).delete()
    return api_token(user)


def webhook_secret(user) -> WebhookSecret:
    """The user's webhook signing secret, made on first use (get_or_create settles two first uses at once)."""
    secret, _ = WebhookSecret.objects.get_or_create(user=user)
    return secret


def new_webhook_secret(user) -> WebhookSecret:
    """Replace the user's webhook secret: deliveries from now on are signed with the new one."""
    secret, _ = WebhookSecret.objects.update_or_create(
        user=user, defaults={"secret": random_webhook_secret(), "created_at": timezone.now()}
    )
    return secret
