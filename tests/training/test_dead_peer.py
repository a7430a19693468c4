"""A worker host that vanishes inside a transaction must not hold its job's row lock for ever: every PostgreSQL
session asks the server to drop a peer that stops answering within DISTILLERY_STALE_AFTER (TCP keepalives and
tcp_user_timeout), so the reaper and the run that takes the job over are not blocked behind a dead connection.
The whole path, with a real link cut, is tests/cluster/test_cross_host_failover.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from config.settings import DISTILLERY_STALE_AFTER, dead_peer_options
from tests.conftest import REPO


def _database_options(**env: str) -> dict:
    code = "import json; from config import settings; print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    environ = {k: v for k, v in os.environ.items() if k not in ("DISTILLERY_STALE_AFTER", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_postgres_session_asks_the_server_to_drop_a_silent_peer_within_the_stale_limit():
    options = _database_options(DATABASE_URL="postgres://u@db.example:5432/d", DISTILLERY_STALE_AFTER="6")
    assert options["options"] == (
        "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 -c tcp_user_timeout=6000"
    )
    default = _database_options(DATABASE_URL="postgres://u@db.example:5432/d")["options"]
    assert default == dead_peer_options(300) and "tcp_user_timeout=300000" in default and "idle=100" in default


def test_the_operators_own_options_come_after_and_so_win():
    url = "postgres://u@db.example:5432/d?options=-c%20tcp_user_timeout%3D1234"
    options = _database_options(DATABASE_URL=url, DISTILLERY_STALE_AFTER="6")["options"]
    assert options.startswith("-c tcp_keepalives_idle=2") and options.endswith("-c tcp_user_timeout=1234")


def test_sqlite_is_left_alone():
    assert "options" not in _database_options(DATABASE_URL="sqlite:////tmp/x.sqlite3")


@pytest.mark.django_db
def test_the_server_applies_them_to_this_session():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (DATABASE_URL)")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('tcp_user_timeout', 'tcp_keepalives_count')"
        )
        settings = dict(cursor.fetchall())
    assert settings == {"tcp_user_timeout": str(int(DISTILLERY_STALE_AFTER * 1000)), "tcp_keepalives_count": "3"}
