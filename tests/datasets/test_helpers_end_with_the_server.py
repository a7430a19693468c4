"""The web server's helper processes (jobs.offload) end with it, however it ends: SIGKILLed, it has no time to
stop them, and an orphaned helper would wait on its task queue for ever."""

from __future__ import annotations

import signal
import time

import psutil
import pytest
from rest_framework.authtoken.models import Token

from tests.conftest import csv_bytes, multipart

pytestmark = pytest.mark.django_db(transaction=True)  # the server process reads what the test commits


def _helpers(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE  # a zombie has ended
    except psutil.NoSuchProcess:
        return False


def test_helpers_end_when_their_web_server_is_killed(web_server, user):
    token = Token.objects.create(user=user).key
    body, content_type = multipart("file", "reviews.csv", csv_bytes([("good film", "pos"), ("bad film", "neg")]))
    status, _ = web_server.request(
        "POST", "/api/datasets/", body, {"Authorization": f"Token {token}", "Content-Type": content_type}
    )
    assert status == 201
    helpers = _helpers(web_server.proc.pid)
    assert helpers  # the upload was read by one

    web_server.proc.send_signal(signal.SIGKILL)
    web_server.proc.wait()
    deadline = time.monotonic() + 10
    while alive := [p.pid for p in helpers if _alive(p)]:
        assert time.monotonic() < deadline, f"helpers {alive} outlived their web server"
