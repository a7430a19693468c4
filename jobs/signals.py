"""Keep the classify fast path's remembered tokens and promoted models in step with the database, and remove a
deleted model's files."""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from . import fastpath, services, serving
from .models import ModelRecord


@receiver([post_save, post_delete], sender=Token)
@receiver([post_save, post_delete], sender=settings.AUTH_USER_MODEL)
def _token_or_user_changed(sender, instance, **kwargs):
    fastpath.forget(getattr(instance, "user_id", None) or instance.pk)


@receiver([post_save, post_delete], sender=ModelRecord)
def _model_changed(sender, instance, **kwargs):
    fastpath.forget(instance.owner_id)


@receiver(post_delete, sender=ModelRecord)
def _model_deleted(sender, instance, **kwargs):
    # Once the deletion is committed: a rolled-back delete keeps its record, so it must keep its files too.
    def gone():
        serving.discard(instance.artifact_prefix)  # this process's engines; others' go with their LRU
        services.delete_model_files(instance)

    transaction.on_commit(gone)
