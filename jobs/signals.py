"""Keep the classify fast path's remembered tokens and promoted models in step with the database, and remove a
deleted model's files.

Runs in: the web process and the workers (connected by JobsConfig.ready).
"""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from .api import fastpath
from .models import ModelRecord
from .registry.storage import delete_model_files
from .serving import engines


def _forget(user_id: int) -> None:
    # Now, and again once the change is committed: a request between the two could otherwise remember what the
    # database held before the commit.
    fastpath.forget(user_id)
    transaction.on_commit(lambda: fastpath.forget(user_id))


@receiver([post_save, post_delete], sender=Token)
@receiver([post_save, post_delete], sender=settings.AUTH_USER_MODEL)
def _token_or_user_changed(sender, instance, **kwargs):
    _forget(getattr(instance, "user_id", None) or instance.pk)


@receiver([post_save, post_delete], sender=ModelRecord)
def _model_changed(sender, instance, **kwargs):
    _forget(instance.owner_id)


@receiver(post_delete, sender=ModelRecord)
def _model_deleted(sender, instance, **kwargs):
    # Once the deletion is committed: a rolled-back delete keeps its record, so it must keep its files too.
    def gone():
        engines.discard(instance.artifact_prefix)  # this process's engines; others' go with their LRU
        delete_model_files(instance)

    transaction.on_commit(gone)
