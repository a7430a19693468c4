"""A user's storage quota (DISTILLERY_USER_QUOTA_MB): the bytes their datasets and models hold, and the check
an upload or import passes before anything of it is stored.

Runs in: the web process (uploads, imports, launches; manage.py import_model). The workers' trained models
count towards the quota but are never refused by it: the job already ran. A leaf: it imports nothing of jobs but
the models.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Sum

from .models import Dataset, ModelRecord


def quota_bytes() -> int | None:
    """The most bytes a user may store, or None when DISTILLERY_USER_QUOTA_MB is 0 (no quota)."""
    limit_mb = settings.DISTILLERY_USER_QUOTA_MB
    return int(limit_mb * 2**20) if limit_mb > 0 else None


def used_bytes(owner) -> int:
    """What the user stores: their datasets' files and their models' folders (each row's size_bytes). Files
    classified and their results are not counted: no row records their size (see the README)."""
    datasets = Dataset.objects.filter(owner=owner).aggregate(total=Sum("size_bytes"))["total"] or 0
    models = ModelRecord.objects.filter(owner=owner).aggregate(total=Sum("size_bytes"))["total"] or 0
    return datasets + models


def check_quota(owner, adding: int, *, field: str = "file") -> None:
    """Refuse, as a ValidationError on `field`, storing `adding` more bytes for a user whom it would take past
    the quota; the message says what they use and the limit.

    Two uploads checked at the same moment can both pass: the quota can be passed by what one user uploads at
    once, never more."""
    limit = quota_bytes()
    if limit is None:
        return
    used = used_bytes(owner)
    if used + adding > limit:
        raise ValidationError({field: (
            f"this needs {_mb(adding)} and you use {_mb(used)} of your {_mb(limit)} storage quota "
            "(DISTILLERY_USER_QUOTA_MB): delete datasets or models to make room"
        )})  # fmt: skip


def check_room(owner, *, field: str = "detail") -> None:
    """Refuse work that will store more (a training job, whose model counts towards the quota) for a user who
    is already at or past the quota."""
    limit = quota_bytes()
    if limit is None:
        return
    used = used_bytes(owner)
    if used >= limit:
        raise ValidationError({field: (
            f"you use {_mb(used)} of your {_mb(limit)} storage quota (DISTILLERY_USER_QUOTA_MB) and a new model "
            "would add to it: delete datasets or models to make room"
        )})  # fmt: skip


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{size / 2**10:,.1f} KB"
