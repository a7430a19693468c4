"""GET /metrics: the Prometheus text format (jobs.observability), for a scraper holding DISTILLERY_METRICS_TOKEN.

The figures say how busy the site is and how many jobs of each kind exist, across all users, so a user's session
or API token does not open it: only `Authorization: Bearer <DISTILLERY_METRICS_TOKEN>` does (401 otherwise). With
the setting empty the endpoint is off (404), which is the default.

Runs in: the web process.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..observability import REGISTRY


@require_GET
def metrics(request):
    token = settings.DISTILLERY_METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: set DISTILLERY_METRICS_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = HttpResponse("a bearer token is needed (DISTILLERY_METRICS_TOKEN)\n", status=401,
                                content_type="text/plain; charset=utf-8")  # fmt: skip
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
