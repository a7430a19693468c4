"""Production switches: `manage.py check --deploy` is clean with the production environment (TLS, a real secret
key, named hosts), and what the embedded stack writes under var/ is readable by its user alone."""

from __future__ import annotations

import os
import runpy
import secrets
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "distillery.example", "DEBUG": "false",
    "DISTILLERY_REQUIRE_SECRET_KEY": "true", "DISTILLERY_HTTPS": "true", "DISTILLERY_PROXY_SSL_HEADER": "true",
}  # fmt: skip


def _check_deploy(**env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DISTILLERY_", "SECRET_KEY", "DEBUG"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO, env={**environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_check_deploy_is_clean_with_the_production_environment():
    result = _check_deploy(**PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_https_check_deploy_names_what_is_missing():
    result = _check_deploy(**{**PRODUCTION, "DISTILLERY_HTTPS": "false"})
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stdout + result.stderr


def test_the_generated_secret_key_is_private_from_its_first_byte(tmp_path):
    var = tmp_path / "var"
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup()"
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**environ, "DISTILLERY_VAR_DIR": str(var)}, check=True)
    assert stat.S_IMODE((var / "secret_key.txt").stat().st_mode) == 0o600


def test_the_launcher_keeps_var_private(tmp_path):
    make_private = runpy.run_path(str(REPO / "platform" / "embedded.py"))["make_private"]
    before = os.umask(0o022)
    try:
        make_private(tmp_path / "var")
        (tmp_path / "var" / "distillery.sqlite3").write_bytes(b"")  # as SQLite or anything else would create it
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "var" / "distillery.sqlite3").stat().st_mode) == 0o600
