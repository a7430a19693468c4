"""The runs page: every job the user may see in one table to search, filter, sort and choose the columns of, and
the same view as CSV.

Runs in: the web process. The query string is the view (?q=, ?kind=, ?status=, ?dataset=, ?sweep=, ?where=,
?sort=, ?columns=, ?page=, ?per_page=), applied in the database by the API's django-filter FilterSet (RunFilter)
on training.runs; the page's script only edits the query string, shows and hides columns and ticks runs.
"""

from __future__ import annotations

import io

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

from mlcore import csvsafe

from ..api.filters import RunFilter
from ..registry.compare import MAX_MODELS
from ..training import runs

VIEW_SETTINGS = ("sort", "columns", "per_page")  # how the runs are shown, not which: Clear keeps them


@login_required
def runs_page(request):
    found = RunFilter(request.GET, queryset=runs.runs(request.user), request=request)
    chosen = _columns(request)
    page = Paginator(found.qs, _per_page(request)).get_page(request.GET.get("page"))
    columns = list(runs.COLUMNS.values())
    sort = request.GET.get("sort", "")
    context = {
        "filter": found, "form": found.form, "page": page, "rows": runs.table_rows(page, columns),
        "headers": [_header(request, column, sort, column.key in chosen) for column in columns],
        "chosen": ",".join(chosen), "defaults": ",".join(runs.default_columns(request.user)),
        "filterable": runs.filterable(), "page_sizes": runs.PAGE_SIZES, "per_page": page.paginator.per_page,
        "max_models": MAX_MODELS, "csv_query": _query(request, page=None), "chosen_keys": chosen,
        "selected_datasets": request.GET.getlist("dataset"), "without_sweep": _query(request, sweep=None, page=None),
        "sweep": found.form.cleaned_data.get("sweep"),  # validated by found.qs above
        "clear_query": _query(request, **{key: None for key in request.GET if key not in VIEW_SETTINGS}),
        # What each of the page's GET forms carries along as hidden fields besides its own.
        "keep_for_filters": _keep(request, lambda key: key in VIEW_SETTINGS or key == "sweep"),
        "keep_for_columns": _keep(request, lambda key: key not in ("columns", "page")),
        "keep_for_page_size": _keep(request, lambda key: key not in ("per_page", "page")),
        "page_links": {
            "first": _query(request, page=1), "previous": _query(request, page=page.number - 1),
            "next": _query(request, page=page.number + 1), "last": _query(request, page=page.paginator.num_pages),
        },
    }  # fmt: skip
    return render(request, "jobs/runs.html", context, status=400 if found.errors else 200)


@login_required
def runs_csv(request):
    """The page's view as CSV: every run it matches (up to runs.MAX_CSV_ROWS) in its order, its chosen columns."""
    found = RunFilter(request.GET, queryset=runs.runs(request.user), request=request)
    if found.errors:
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in found.errors.items())
        return HttpResponse(problems, status=400, content_type="text/plain; charset=utf-8")
    out = io.StringIO()
    csvsafe.writer(out, lineterminator="\n").writerows(runs.csv_rows(found.qs, _columns(request)))
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="distillery-runs.csv"'
    return response


def _columns(request) -> list[str]:
    """?columns=a,b (the page's script) or ?columns=a&columns=b (the chooser's form without it)."""
    return runs.chosen_columns(",".join(request.GET.getlist("columns")), request.user)


def _keep(request, wanted) -> list[tuple[str, str]]:
    return [(key, value) for key, values in request.GET.lists() if wanted(key) for value in values]


def _per_page(request) -> int:
    value = request.GET.get("per_page", "")
    return int(value) if value.isdigit() and int(value) in runs.PAGE_SIZES else 50


def _query(request, **changes) -> str:
    """The request's query string with `changes` made (None removes a key)."""
    query = request.GET.copy()
    for key, value in changes.items():
        query.pop(key, None)
        if value is not None:
            query[key] = str(value)
    return query.urlencode()


def _header(request, column: runs.Column, sort: str, visible: bool) -> dict:
    """A column's heading: its link sorts by it (ascending first, then descending), back to the first page."""
    current = "ascending" if sort == column.key else "descending" if sort == f"-{column.key}" else None
    target = f"-{column.key}" if current == "ascending" else column.key
    return {
        "column": column, "visible": visible, "aria_sort": current,
        "sort_query": _query(request, sort=target, page=None),
    }  # fmt: skip
