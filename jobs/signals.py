"""Keep the classify fast path's remembered tokens and promoted models in step with the database."""

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from . import fastpath
from .models import ModelRecord


@receiver([post_save, post_delete], sender=Token)
@receiver([post_save, post_delete], sender=settings.AUTH_USER_MODEL)
def _token_or_user_changed(sender, instance, **kwargs):
    fastpath.forget(getattr(instance, "user_id", None) or instance.pk)


@receiver([post_save, post_delete], sender=ModelRecord)
def _model_changed(sender, instance, **kwargs):
    fastpath.forget(instance.owner_id)
