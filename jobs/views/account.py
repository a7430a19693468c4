"""The account page (API token, webhook secret) and the health check.

Runs in: the web process.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import accounts
from ..health import health_status


@login_required
def api_token(request):
    """Your API token, for scripts (Authorization: Token <key>); POST makes a new one, and the old one stops
    working at once (the fast path forgets it through jobs.signals)."""
    if request.method == "POST":
        accounts.new_api_token(request.user)
        messages.success(request, "A new token: the old one no longer works.")
        return redirect("api-token-page")
    context = {"token": accounts.api_token(request.user), "webhook_secret": accounts.webhook_secret(request.user)}
    return render(request, "jobs/api_token.html", context)


@login_required
@require_POST
def webhook_secret_rotate(request):
    """Make a new webhook secret (shown on the account page): deliveries from now on are signed with it."""
    accounts.new_webhook_secret(request.user)
    messages.success(request, "A new webhook secret: update your receivers, which now get signatures made with it.")
    return redirect("api-token-page")


def healthz(request):
    body, status = health_status()
    return JsonResponse(body, status=status)
