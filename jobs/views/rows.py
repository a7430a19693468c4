"""Test-row pages: the error browser (one cell of a model's confusion matrix as its rows, CSV too), the
disagreement browser (two models on the same test rows), and the button that queues an evaluation for a model
stored without its rows.

Runs in: the web process. Pages read stored rows (registry.rows); the evaluation runs on a worker.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from ..api.rows import csv_response
from ..models import ModelRecord
from ..registry import rows as stored
from ..serving.evaluate import active_job, create_evaluate_job

PER_PAGE = 25  # rows a page shows


def _visible(request, pk) -> ModelRecord:
    return get_object_or_404(ModelRecord.objects.visible_to(request.user), pk=pk)


def rows_context(request, record: ModelRecord) -> dict:
    """What the model page shows of the record's test rows: whether it has them (the matrix's cells then link
    to them), the evaluation under way, and the models it can be set beside (those with stored rows)."""
    others = (
        ModelRecord.objects.visible_to(request.user)
        .exclude(pk=record.pk)
        .filter(test_rows_count__isnull=False)
        .order_by("-created_at", "-id")
    )
    default = record.teacher_id if others.filter(pk=record.teacher_id).exists() else None
    return {
        "has_rows": record.test_rows_count is not None,
        "evaluating": active_job(record),
        "can_evaluate": record.owner_id == request.user.pk and record.kind != ModelRecord.Kind.IMPORTED,
        "rows_partners": list(others[:100]),
        "rows_partner": default,
    }


def _query(request, **changes) -> str:
    """The page's query string with `changes` applied (None drops a key)."""
    params = {k: v for k, v in request.GET.items() if k != "page"}
    params.update(changes)
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


@login_required
def model_errors(request, pk):
    """One cell of the model's confusion matrix (?true=&predicted=) as its test rows, by confidence."""
    record = _visible(request, pk)
    true, predicted, order = request.GET.get("true"), request.GET.get("predicted"), request.GET.get("order")
    context = {"model": record, "true": true, "predicted": predicted, "evaluating": active_job(record)}
    if record.test_rows_count is None:
        context["can_evaluate"] = record.owner_id == request.user.pk
        return render(request, "jobs/model_errors.html", context)
    try:
        found = stored.cell_rows(record, true, predicted, order)
    except ValidationError as exc:
        return render(request, "jobs/model_errors.html", context | {"error": _message(exc)}, status=400)
    page = Paginator(found, PER_PAGE).get_page(request.GET.get("page"))
    order = stored.check_order(order)
    context |= {
        "page": page, "order": order, "rows": [stored.row_dict(record, r) for r in page.object_list],
        "other_order": _query(request, order="unsure" if order == "confident" else "confident"),
        "csv_url": reverse("model-errors-csv", args=[record.pk]) + "?" + _query(request),
        "page_query": _query(request),
    }  # fmt: skip
    return render(request, "jobs/model_errors.html", context)


@login_required
def model_errors_csv(request, pk):
    record = _visible(request, pk)
    if record.test_rows_count is None:
        return HttpResponse("the model has no stored test rows", status=404, content_type="text/plain; charset=utf-8")
    true, predicted = request.GET.get("true"), request.GET.get("predicted")
    try:
        found = stored.cell_rows(record, true, predicted, request.GET.get("order"))
    except ValidationError as exc:
        return HttpResponse(_message(exc), status=400, content_type="text/plain; charset=utf-8")
    return csv_response(stored.csv_text(record, found), stored.csv_name(record, true, predicted))


@login_required
@require_POST
def model_evaluate(request, pk):
    record = get_object_or_404(ModelRecord.objects.filter(owner=request.user), pk=pk)
    try:
        job = create_evaluate_job(request.user, record)
    except ValidationError as exc:
        messages.error(request, f"It cannot be evaluated on its test rows: {_message(exc)}")
    else:
        messages.success(request, f"Evaluating {record.name} on its test rows: job #{job.pk}.")
    return redirect("model-detail", pk=record.pk)


@login_required
def disagreement_pick(request, pk):
    """The model page's and Compare's picker: ?other= to the pair's page."""
    record = _visible(request, pk)
    other = request.GET.get("other", "")
    if not other.isdigit():
        return redirect("model-detail", pk=record.pk)
    return redirect("model-disagreements", pk=record.pk, other=int(other))


@login_required
def model_disagreements(request, pk, other):
    """Where two models disagree on the same test rows: a x b counts, and the rows of a cell, by confidence."""
    a, b = _visible(request, pk), _visible(request, other)
    a_label, b_label, order = request.GET.get("a_label"), request.GET.get("b_label"), request.GET.get("order")
    context = {"a": a, "b": b, "a_label": a_label, "b_label": b_label}
    try:
        pair = stored.Pair.load(a, b)
        found = pair.disagreeing(a_label, b_label, order)
    except ValidationError as exc:
        return render(request, "jobs/model_disagreements.html", context | {"error": _message(exc)}, status=400)
    page = Paginator(found, PER_PAGE).get_page(request.GET.get("page"))
    table = pair.table()
    cells = [
        [{"a": la, "b": lb, "count": n, "same": la == lb, "query": _query(request, a_label=la, b_label=lb)}
         for lb, n in zip(pair.labels, counts, strict=True)]
        for la, counts in zip(pair.labels, table, strict=True)
    ]  # fmt: skip
    context |= {
        "labels": pair.labels, "cells": cells, "page": page, "rows": pair.rows(list(page.object_list)),
        "order": order or "a", "total": len(pair.answers),
        "disagreeing": len(pair.answers) - sum(table[i][i] for i in range(len(table))),
        "sort": {key: _query(request, order=key) for key in stored.PAIR_ORDERS},
        "all_query": _query(request, a_label=None, b_label=None), "page_query": _query(request),
    }  # fmt: skip
    return render(request, "jobs/model_disagreements.html", context)


def _message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
    return " ".join(exc.messages)
