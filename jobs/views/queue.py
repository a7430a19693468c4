"""The dashboard's queue: a queued job of the user's moved to the top, up or down (a form's POST; the page's
script sends the same to POST /api/jobs/{id}/move/ and redraws from the websocket's queue events).

Runs in: the web process.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from ..models import Job
from ..training import queue_order


@login_required
@require_POST
def job_move(request, pk):
    job = get_object_or_404(Job, pk=pk, owner=request.user)
    to = request.POST.get("to")
    if to not in queue_order.MOVES:
        messages.error(request, f"Move job #{pk} to the top, up or down.")
    else:
        try:
            queue_order.move(job, to=to)
        except queue_order.NotQueued:
            messages.info(request, f"Job #{pk} is no longer queued.")
    return redirect("/#queue")
