"""The checks behind /healthz.

Runs in: the web process.
"""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection

from config.celery import app


def health_status() -> tuple[dict, int]:
    """DB, Redis and worker checks for /healthz."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # report, do not raise: this is the health page
        checks["database"] = f"error: {exc}"
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {exc}"
    try:
        replies = app.control.ping(timeout=1.0) or []
        checks["workers"] = f"{len(replies)} online" if replies else "none online"
    except Exception as exc:
        checks["workers"] = f"error: {exc}"
    ok = checks["database"] == "ok" and checks["redis"] == "ok"
    return {"status": "ok" if ok else "error", "checks": checks}, (200 if ok else 503)
