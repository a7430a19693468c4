"""Pages of the promote guard and the promotion history: promote a model (through the guard, with an override
when rules fail), the history (/promotions/) and its rollback.

Runs in: the web process.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ..models import ModelRecord
from ..registry import history


class PromoteForm(forms.Form):
    override = forms.BooleanField(required=False, label="Promote anyway, overriding the failed rules")
    reason = forms.CharField(required=False, max_length=500, label="Why (kept in the history)")
    next = forms.CharField(required=False)


@login_required
@require_POST
def model_promote(request, pk):
    """Promote through the guard; refused with the failed rules unless the override box is ticked. Back to `next`
    (a page of this site) or the dashboard."""
    record = get_object_or_404(ModelRecord.objects.filter(owner=request.user), pk=pk)
    form = PromoteForm(request.POST)
    form.is_valid()  # every field is optional; one that is too long is left out
    data = form.cleaned_data
    try:
        entry = history.promote(record, override=data.get("override", False), reason=data.get("reason", ""))
    except history.Refused as refused:
        rules = "; ".join(f"{rule.title}: {rule.detail}" for rule in refused.verdict.failed)
        messages.error(request, f"{record.name} was not promoted: it fails {rules} Tick the override on its page "
                                "to promote it anyway.")  # fmt: skip
    else:
        overridden = " (rules overridden)" if entry and entry.overridden else ""
        messages.success(request, f"{record.name} now serves your classify requests{overridden}.")
    back = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure())
    return redirect(back if allowed else "dashboard")  # never to another site


@login_required
def promotions(request):
    """The user's promotion history, newest first (staff: everyone's), with a rollback for the newest."""
    entries = list(history.history(request.user)[:200])
    newest = history.newest_ids(request.user)
    for entry in entries:
        entry.can_roll_back = entry.owner_id == request.user.pk and history.can_roll_back(entry, newest)
    return render(request, "jobs/promotions.html", {"entries": entries})


@login_required
@require_POST
def promotion_rollback(request, pk):
    entry = get_object_or_404(history.history(request.user).filter(owner=request.user), pk=pk)
    try:
        done = history.rollback(entry)
    except ValidationError as exc:
        messages.error(request, f"Not rolled back: {exc.messages[0]}.")
    else:
        messages.success(request, f"Rolled back: {done.model_name} serves your classify requests again.")
    return redirect("promotions")
