"""Promotion history: each time a user's serving model changed through the promote guard, who made the change,
when, which model it made serve, what it replaced, whether rules failed and were overridden (and which, as they
stood then), and whether it was rolled back (jobs.models imports it, so it is one of the app's models).

Runs in: the web process.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PromotionQuerySet(models.QuerySet):
    def visible_to(self, user):
        """A user's own history, or everyone's for staff (as jobs.models.OwnedQuerySet)."""
        if not user.is_authenticated:
            return self.none()
        return self if user.is_staff else self.filter(owner=user)


class Promotion(models.Model):
    """One change of a user's serving model: a promote, or a rollback (`rollback_of` names the one it undid).
    The model names are kept as they were, so that the history still reads after a model is deleted."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="promotions")
    created_at = models.DateTimeField(auto_now_add=True)
    model = models.ForeignKey("jobs.ModelRecord", null=True, on_delete=models.SET_NULL, related_name="promotions")
    model_name = models.CharField(max_length=200)
    replaced = models.ForeignKey("jobs.ModelRecord", null=True, on_delete=models.SET_NULL, related_name="+")
    replaced_name = models.CharField(max_length=200, blank=True, help_text="Empty when nothing served before.")
    overridden = models.BooleanField(default=False, help_text="Rules failed and the owner promoted it anyway.")
    reason = models.CharField(max_length=500, blank=True, help_text="Why, as the owner gave it.")
    failed_rules = models.JSONField(default=list, help_text="The rules it failed then (jobs.registry.guard.Rule).")
    rollback_of = models.ForeignKey("self", null=True, on_delete=models.SET_NULL, related_name="+")
    rolled_back_at = models.DateTimeField(null=True, blank=True, help_text="When a rollback undid this one.")

    objects = PromotionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_name} promoted by {self.owner} ({self.created_at:%Y-%m-%d %H:%M})"
