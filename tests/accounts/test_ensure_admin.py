"""On first start `manage.py ensure_admin` creates one superuser, "admin" or DISTILLERY_ADMIN_USER, with
DISTILLERY_ADMIN_PASSWORD or a generated password that it keeps in VAR_DIR/admin-password.txt, readable by its
owner only, and prints to a terminal only (never to a log). Once any user exists it creates nobody and says to
log in as an existing user."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path, monkeypatch):
    """A VAR_DIR not made yet, and no first-start variables from the environment running the tests."""
    settings.VAR_DIR = tmp_path / "var"
    monkeypatch.delenv("DISTILLERY_ADMIN_USER", raising=False)
    monkeypatch.delenv("DISTILLERY_ADMIN_PASSWORD", raising=False)
    return settings.VAR_DIR


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _ensure_admin(out=None) -> str:
    out = out or io.StringIO()  # not a terminal, as under docker compose or a process manager
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def _printed_password(output: str) -> str:
    return re.fullmatch(r"created user '[^']+' with password '([^']+)'; the password is in .*\n", output).group(1)


def test_with_no_users_it_creates_the_admin_superuser_with_a_password_kept_in_a_private_file(_var_dir):
    output = _ensure_admin()

    admin = User.objects.get()
    assert (admin.username, admin.is_superuser, admin.is_staff, admin.is_active) == ("admin", True, True, True)
    password_file = _var_dir / "admin-password.txt"
    assert password_file.stat().st_mode & 0o777 == 0o600
    password = password_file.read_text().strip()
    assert password_file.read_text() == password + "\n"
    assert len(password) >= 16 and admin.check_password(password)
    assert output == f"created user 'admin'; the password is in {password_file}\n" and password not in output


def test_the_password_is_printed_to_a_terminal_only(_var_dir):
    output = _ensure_admin(Terminal())
    assert _printed_password(output) == (_var_dir / "admin-password.txt").read_text().strip()


def test_the_generated_password_is_drawn_afresh_each_first_start(_var_dir):
    _ensure_admin()
    first = (_var_dir / "admin-password.txt").read_text()
    User.objects.all().delete()

    _ensure_admin()

    second = (_var_dir / "admin-password.txt").read_text()
    assert second != first and User.objects.get().check_password(second.strip())


def test_the_user_name_comes_from_distillery_admin_user(monkeypatch, _var_dir):
    monkeypatch.setenv("DISTILLERY_ADMIN_USER", "root-of-all")

    output = _ensure_admin()

    admin = User.objects.get()
    assert admin.username == "root-of-all" and admin.is_superuser
    assert output.startswith("created user 'root-of-all'; the password is in")
    assert admin.check_password((_var_dir / "admin-password.txt").read_text().strip())


def test_a_password_from_the_environment_is_used_and_written_nowhere(monkeypatch, _var_dir):
    monkeypatch.setenv("DISTILLERY_ADMIN_PASSWORD", "correct horse battery")

    output = _ensure_admin()

    admin = User.objects.get(username="admin")
    assert admin.check_password("correct horse battery")
    assert output == "created user 'admin' with DISTILLERY_ADMIN_PASSWORD\n" and "horse" not in output
    assert not _var_dir.exists()


def test_run_again_it_creates_nobody_and_points_at_the_password_file(_var_dir):
    _ensure_admin()
    password = (_var_dir / "admin-password.txt").read_text()

    output = _ensure_admin()

    assert output == f"log in as an existing user (password in {_var_dir / 'admin-password.txt'})\n"
    assert User.objects.count() == 1
    assert (_var_dir / "admin-password.txt").read_text() == password  # not replaced by a new one
    assert User.objects.get().check_password(password.strip())


def test_with_any_user_already_there_it_creates_nobody(user, monkeypatch, _var_dir):
    monkeypatch.setenv("DISTILLERY_ADMIN_PASSWORD", "would-be-admin")

    output = _ensure_admin()

    assert output == "log in as an existing user\n"  # no password file to point at
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]
    assert not _var_dir.exists()


def test_an_empty_password_variable_counts_as_unset(monkeypatch, _var_dir):
    monkeypatch.setenv("DISTILLERY_ADMIN_PASSWORD", "")

    output = _ensure_admin()

    password = (_var_dir / "admin-password.txt").read_text().strip()
    assert password and User.objects.get().check_password(password)
    assert "the password is in" in output
