from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Distillery jobs"

    def ready(self):
        from . import signals  # noqa: F401  (connects the receivers)
