"""Create the first account on first start, so the README can say how to log in.

Runs in: the launcher (make up) and container entry points, before the web process starts.
"""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the 'admin' superuser if no user exists; print how to log in."

    def handle(self, *args, **options):
        User = get_user_model()
        username = os.environ.get("DISTILLERY_ADMIN_USER", "admin")
        password_file = settings.VAR_DIR / "admin-password.txt"
        if User.objects.exists():
            hint = f" (password in {password_file})" if password_file.exists() else ""
            self.stdout.write(f"log in as an existing user{hint}")
            return
        given = os.environ.get("DISTILLERY_ADMIN_PASSWORD", "")  # empty is unset, as compose passes it
        password = given or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if given:
            self.stdout.write(self.style.SUCCESS(f"created user '{username}' with DISTILLERY_ADMIN_PASSWORD"))
            return
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        # Private from its first byte: opened 0o600, not chmod-ed after the password is in it.
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        # The password itself only to a terminal: a log (docker compose, a process manager) keeps what it is given.
        shown = f" with password '{password}'" if self.stdout.isatty() else ""
        self.stdout.write(self.style.SUCCESS(f"created user '{username}'{shown}; the password is in {password_file}"))
