"""The first classify after a promote: the promote's preload thread and the requests must not race on importing
torch and transformers (a lazy module a second thread can see half-built). The web application imports them when
it is loaded, before any thread, and a promote followed at once by a burst of requests answers every one, in
fresh processes (imports are cached per process, so only a fresh one can show the race)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from tests.conftest import _worker_database_url

REPO = Path(__file__).resolve().parents[2]
RUNTIME = ("transformers", "torch", "mlcore.inference", "mlcore.serving", "mlcore.explain", "mlcore.artifacts")


def _python(*args: str, env: dict | None = None, timeout: float = 180) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_web_application_imports_the_ml_runtime_before_any_thread_runs():
    script = (
        "import sys, threading; import config.asgi; "
        f"print([m for m in {RUNTIME!r} if m not in sys.modules], threading.active_count())"
    )
    missing, threads = _python("-c", script).strip().rsplit(" ", 1)
    assert missing == "[]"
    assert int(threads) == 1  # nothing else ran while they were imported


@pytest.mark.django_db(transaction=True)
def test_a_promote_then_an_immediate_burst_of_classify_requests_all_answer(user, trained_model, settings):
    token = Token.objects.get_or_create(user=user)[0].key
    env = {"DATABASE_URL": _worker_database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT), "OMP_NUM_THREADS": "1"}
    for attempt in range(3):  # each a fresh process: without the import at start, the first showed the race
        answers = json.loads(_python("-m", "tests.serving.promote_burst", token, str(trained_model.pk), "16", env=env))
        assert [status for status, _ in answers] == [200] * 17, (attempt, [a for a in answers if a[0] != 200])
