"""Accounts: API tokens, the key to every script's access (REST, websockets, the classify fast path) and to
webhook signatures.

Runs in: the web process and the workers. A leaf: it imports nothing of jobs.
"""

from __future__ import annotations

from rest_framework.authtoken.models import Token


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
