"""The jobs app.

Runs in: every process that sets Django up (web, workers, manage.py).
"""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Distillery jobs"

    def ready(self):
        # Django's place for it: the receivers connect once every model is loaded.
        from . import signals  # noqa: F401
