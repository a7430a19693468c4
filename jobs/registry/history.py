"""Promoting through the guard, with its history: the one path by which the pages and the API change the model
that serves a user (a promote, an override, a rollback), each change a jobs.promotions.Promotion row.

Runs in: the web process.

1. The guard (jobs.registry.guard) judges the model; failed rules refuse it (Refused) unless the owner overrides.
2. In one transaction: the model the owner served is read under a lock, the new one promoted
   (registry.services.promote: saved, so the classify fast path looks it up again) and the change recorded.
3. Once committed, this process's engine for the new model is built in the background (serving.engines.preload),
   as a promote always did; other web processes build theirs on their next classify.
A rollback is the same promote, of the model the undone change replaced, marking the undone change.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from ..models import ModelRecord
from ..promotions import Promotion
from ..serving import engines
from . import guard
from .services import promote as make_serve


class Refused(Exception):
    """The model failed rules and no override was given: nothing changed."""

    def __init__(self, record: ModelRecord, verdict: guard.Verdict) -> None:
        self.record, self.verdict = record, verdict
        names = ", ".join(rule.title for rule in verdict.failed)
        super().__init__(f"{record.name} fails the promote guard ({names}): promote it with an override to serve it")


def promote(record: ModelRecord, *, override: bool = False, reason: str = "") -> Promotion | None:
    """Make `record` serve its owner's classify requests if it passes the guard or `override` is set; the
    Promotion recorded, or None when it already serves (nothing changes, nothing is recorded). Refused when it
    fails a rule without an override."""
    verdict = guard.evaluate(record)
    if verdict.failed and not override:
        raise Refused(record, verdict)
    return _change(record, verdict, reason=reason)


def rollback(entry: Promotion) -> Promotion:
    """Make the model that `entry` replaced serve again, through the same promote. Only the owner's newest change,
    while its model still serves, and only once; a ValidationError says why not. The rollback is recorded as a
    change of its own (`rollback_of`), with the rules the restored model fails now, which do not stop it: it
    served before."""
    with transaction.atomic():
        newest = Promotion.objects.select_for_update().filter(owner_id=entry.owner_id).order_by("-pk").first()
        if newest is None or newest.pk != entry.pk:
            raise ValidationError("only your newest promotion can be rolled back")
        if entry.rolled_back_at is not None:
            raise ValidationError("this promotion was already rolled back")
        if entry.replaced_id is None:
            gone = f"{entry.replaced_name} was deleted" if entry.replaced_name else "no model served before it"
            raise ValidationError(f"nothing to roll back to: {gone}")
        current = ModelRecord.objects.filter(owner_id=entry.owner_id, is_promoted=True).first()
        if current is None or current.pk != entry.model_id:
            raise ValidationError(f"{entry.model_name} no longer serves: promote the model you want instead")
        restored = ModelRecord.objects.get(pk=entry.replaced_id)
        verdict = guard.evaluate(restored)
        done = _change(restored, verdict, reason=f"rollback of #{entry.pk}", rollback_of=entry)
        Promotion.objects.filter(pk=entry.pk).update(rolled_back_at=done.created_at)
    entry.refresh_from_db()
    return done


def history(user):
    """The user's changes (staff: everyone's), newest first, with their models."""
    return Promotion.objects.visible_to(user).select_related("owner", "model", "replaced")


def can_roll_back(entry: Promotion, newest: dict[int, int]) -> bool:
    """Whether rollback(entry) would act: its owner's newest change (`newest`: newest_ids), its model still
    serving, not rolled back yet, with a model to go back to."""
    serving = entry.model is not None and entry.model.is_promoted
    undone = entry.rolled_back_at is not None
    return newest.get(entry.owner_id) == entry.pk and serving and not undone and entry.replaced_id is not None


def newest_ids(user) -> dict[int, int]:
    """{owner id: the id of that owner's newest change}, for the owners `user` sees: the change rollback takes."""
    newest = Promotion.objects.visible_to(user).order_by().values("owner_id").annotate(newest=Max("pk"))
    return {row["owner_id"]: row["newest"] for row in newest}


def _change(
    record: ModelRecord, verdict: guard.Verdict, *, reason: str, rollback_of: Promotion | None = None
) -> Promotion | None:
    failed = verdict.failed
    with transaction.atomic():
        # Locked, so that two promotes of one owner record what each really replaced.
        before = ModelRecord.objects.select_for_update().filter(owner_id=record.owner_id, is_promoted=True).first()
        if before is not None and before.pk == record.pk:
            return None
        make_serve(record)
        entry = Promotion.objects.create(
            owner_id=record.owner_id, model=record, model_name=record.name, replaced=before,
            replaced_name=before.name if before else "", overridden=bool(failed), reason=reason.strip()[:500],
            failed_rules=guard.rule_dicts(failed), rollback_of=rollback_of,
        )  # fmt: skip
    transaction.on_commit(lambda: engines.preload(record))  # this process loads it now; others on their next classify
    return entry
