"""The runs table: every job a user may see as one row of columns (the run itself, each hyperparameter, its
model's metrics) that the database can sort and compare, a search over names, conditions such as
"learning_rate <= 3e-5, test_accuracy >= 0.8", and the rows as CSV.

Runs in: the web process. Each column is defined once, here: where its value lives on a job (for the page and
the CSV) and the SQL expression of the same value (for ORDER BY and WHERE), so that the table sorts and filters
in the database on PostgreSQL and SQLite alike. A JSON value is read as a number only where it is one
(JSONNumber): an imported model's metrics may hold anything, and a cast of a string would fail the whole query.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Case,
    CharField,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    When,
)
from django.db.models.fields.json import KT, compile_json_path
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from mlcore.config import DistillConfig, TrainConfig, config_fields

from ..models import Job
from ..registry.compare import METRICS

MAX_CSV_ROWS = 10_000  # rows in one CSV export; a view of more is cut there (and says so in its last line)
PAGE_SIZES = (25, 50, 100, 200)
SEARCH_TERMS = 8  # words of a search at most: each one is a join-wide LIKE


class JSONNumber(Func):
    """A JSON column's key as a float where it holds a JSON number; NULL otherwise (a string, a boolean, null, no
    such key, a number past a double's range), so that sorting and comparing never fail on what a row holds."""

    output_field = FloatField()

    def __init__(self, field: str, key: str):
        super().__init__(F(field))
        self.key = key

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        text = f"({sql} ->> %s)"
        return (
            f"(CASE WHEN jsonb_typeof({sql} -> %s) = 'number' THEN "
            f"CASE WHEN abs({text}::numeric) < 1e300 THEN {text}::double precision END END)",
            [*params, self.key, *params, self.key, *params, self.key],
        )

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        path = compile_json_path([self.key])
        return (
            f"(CASE WHEN json_type({sql}, %s) IN ('integer', 'real') THEN json_extract({sql}, %s) END)",
            [*params, path, *params, path],
        )


def _json_number(value: Any) -> float | int | None:
    """The Python side of JSONNumber: a finite int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return value if math.isfinite(value) else None
    except OverflowError:  # an int past a double's range
        return None


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the table. `value` reads it from a job (select_related as `runs` does), `expression` is the
    same value in SQL; `numeric` columns take <, <=, >, >= conditions, the others = and != (against JSON for a
    hyperparameter); `default` columns are shown until the user chooses."""

    key: str
    label: str
    group: str  # "run", "hyperparameter" or "metric"
    value: Callable[[Job], Any]
    expression: Any
    numeric: bool = False
    default: bool = False
    text: Callable[[Any], str] = str  # the value as the page shows it (never None: that is "—")
    help: str = ""
    param: str | None = None  # the hyperparameter's name, for = and != conditions on its JSON value

    @property
    def alias(self) -> str:
        return f"run_{self.key}"


def _duration(job: Job) -> float | None:
    if job.started_at is None:
        return None
    return round(((job.finished_at or timezone.now()) - job.started_at).total_seconds(), 1)


def _duration_text(seconds: float) -> str:
    """47 s, 3 min 5 s, 2 h 3 min: the job page's "0 minutes" for a 47 s job said nothing."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _model_name(job: Job) -> str:
    if job.kind == Job.Kind.DISTILL:
        return job.teacher.name if job.teacher else ""
    if job.kind == Job.Kind.CLASSIFY:
        return job.model.name if job.model else ""
    return job.base_model


def _metric(key: str) -> Callable[[Job], Any]:
    def read(job: Job) -> Any:
        metrics = job.result_model.metrics if job.result_model else None
        return _json_number(metrics.get(key)) if isinstance(metrics, dict) else None

    return read


def _record(attr: str, scale: float = 1) -> Callable[[Job], Any]:
    return lambda job: getattr(job.result_model, attr) / scale if job.result_model else None


def _param(name: str, numeric: bool) -> Callable[[Job], Any]:
    def read(job: Job) -> Any:
        value = job.params.get(name) if isinstance(job.params, dict) and job.kind in Job.CONFIGS else None
        return _json_number(value) if numeric else value

    return read


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _fixed(digits: int) -> Callable[[Any], str]:
    return lambda value: f"{value:.{digits}f}"


_RUN = [
    Column("id", "Run", "run", lambda j: j.pk, F("pk"), numeric=True, default=True, text=lambda v: f"#{v}"),
    Column(
        "name", "Name", "run", lambda j: j.result_model.name if j.result_model else "", F("result_model__name"),
        default=True, help="The model the run made.",
    ),
    Column("kind", "Kind", "run", lambda j: j.get_kind_display(), F("kind"), default=True),
    Column("status", "Status", "run", lambda j: j.status, F("status"), default=True),
    Column(
        "dataset", "Dataset", "run", lambda j: j.dataset.name if j.dataset else j.input_filename,
        Coalesce(F("dataset__name"), F("input_filename")), default=True,
        help="Training data; for a file classification, the file.",
    ),
    Column(
        "model", "Base model / teacher", "run", _model_name,
        Case(
            When(kind=Job.Kind.DISTILL, then=F("teacher__name")), When(kind=Job.Kind.CLASSIFY, then=F("model__name")),
            default=F("base_model"), output_field=CharField(),
        ),
        default=True, help="Fine-tune: the base model; distil: the teacher; classify: the model that classified.",
    ),
    Column("sweep", "Sweep", "run", lambda j: j.sweep.name if j.sweep else "", F("sweep__name")),
    Column("owner", "Owner", "run", lambda j: j.owner.get_username(), F("owner__username")),
    Column(
        "created", "Created", "run", lambda j: j.created_at, F("created_at"), default=True,
        text=lambda v: timezone.localtime(v).strftime("%Y-%m-%d %H:%M"),
    ),
    Column(
        "duration", "Duration", "run", _duration,
        ExpressionWrapper(Coalesce(F("finished_at"), Now()) - F("started_at"), output_field=DurationField()),
        numeric=True, default=True, text=_duration_text, help="Seconds from start to end (or to now while running).",
    ),
]  # fmt: skip

_LABELS = {
    "avg_train_accuracy": "Avg train acc", "valid_accuracy": "Valid acc", "test_accuracy": "Test acc",
    "avg_train_loss": "Avg train loss", "test_macro_f1": "Test macro F1", "valid_loss": "Valid loss",
    "test_loss": "Test loss", "cpu_latency_ms_b1": "CPU latency (ms, 1 text)",
    "cpu_samples_per_s_b32": "CPU texts/s (batch 32)", "ece": "ECE (test)", "ece_uncalibrated": "ECE uncalibrated",
    "val_agreement": "Valid agreement w/ teacher", "test_agreement": "Test agreement w/ teacher",
}  # fmt: skip
_METRIC_DEFAULTS = {"valid_accuracy", "test_accuracy", "cpu_latency_ms_b1"}
_PARAM_DEFAULTS = {"learning_rate", "batch_size", "epochs", "max_length"}


def _metric_columns() -> list[Column]:
    # The keys and sources of the Compare table (registry.compare.METRICS), and the two losses it leaves out.
    sources = [*METRICS, ("valid_loss", "val/loss"), ("test_loss", "test/loss")]
    columns = [
        Column(
            key, _LABELS[key], "metric", _metric(source), JSONNumber("result_model__metrics", source), numeric=True,
            default=key in _METRIC_DEFAULTS, text=_fixed(1 if key.startswith("cpu_") else 4), help=source,
        )
        for key, source in sources
    ]  # fmt: skip
    columns += [
        Column(
            "size_mb", "Size (MB)", "metric", _record("size_bytes", 1e6),
            ExpressionWrapper(F("result_model__size_bytes") / 1e6, output_field=FloatField()), numeric=True,
            default=True, text=_fixed(1), help="The stored model's size in megabytes.",
        ),
        Column(
            "num_parameters", "Parameters (M)", "metric", _record("num_parameters", 1e6),
            ExpressionWrapper(F("result_model__num_parameters") / 1e6, output_field=FloatField()), numeric=True,
            text=_fixed(1), help="The model's parameters, in millions.",
        ),
    ]  # fmt: skip
    return columns


def _param_columns() -> list[Column]:
    # Every hyperparameter of both kinds, in declaration order (distillation's own last), from mlcore.config.
    columns = []
    shared = {f["name"] for f in config_fields(TrainConfig)}
    for field in config_fields(DistillConfig):
        name = field["name"]
        numeric = field["choices"] is None and set(field["type"].split(" | ")) <= {"int", "float", "None"}
        expression = JSONNumber("params", name) if numeric else KT(f"params__{name}")
        help_text = field["help"] if name in shared else f"Distil only. {field['help']}"
        columns.append(
            Column(
                name, name, "hyperparameter", _param(name, numeric), expression, numeric=numeric,
                default=name in _PARAM_DEFAULTS, text=_param_text, help=help_text, param=name,
            )
        )  # fmt: skip
    return columns


COLUMNS: dict[str, Column] = {c.key: c for c in [*_RUN, *_param_columns(), *_metric_columns()]}


# What no column reads, some of it large (a traceback, a model's report): left out of the one query.
_UNREAD = (
    "error", "rewinds", "webhook_url", "worker", "celery_task_id", "owner__password",
    *(f"{record}__{field}" for record in ("teacher", "model") for field in ("params", "metrics", "label_names",
                                                                             "artifact_files")),
    "result_model__params", "result_model__label_names", "result_model__artifact_files",
    "sweep__params", "sweep__grid", "sweep__search", "dataset__labels", "dataset__label_counts",
)  # fmt: skip


def runs(user) -> QuerySet[Job]:
    """The jobs `user` may see (staff: everyone's), newest first, with what every column reads in the same query
    and each column's expression as an alias (`run_<key>`) to sort and filter on."""
    jobs = Job.objects.visible_to(user).select_related("dataset", "teacher", "model", "result_model", "sweep", "owner")
    jobs = jobs.defer(*_UNREAD)
    return jobs.alias(**{c.alias: c.expression for c in COLUMNS.values()})


def default_columns(user) -> list[str]:
    """What the table shows until the user chooses: staff also see whose each run is."""
    return [c.key for c in COLUMNS.values() if c.default or (c.key == "owner" and user.is_staff)]


def chosen_columns(value: str | None, user) -> list[str]:
    """The columns a ?columns=a,b,c value names, in the table's order; unknown names are left out, and a value
    that names none gives the defaults."""
    named = {part.strip() for part in (value or "").split(",")}
    chosen = [key for key in COLUMNS if key in named]
    return chosen or default_columns(user)


def search(jobs: QuerySet[Job], text: str) -> QuerySet[Job]:
    """Runs whose name, dataset, base model, teacher, classifier, file or sweep holds every word of `text`
    (case-insensitive); a word such as 12 or #12 also matches run #12."""
    for word in text.split()[:SEARCH_TERMS]:
        match = Q()
        for field in ("result_model__name", "dataset__name", "base_model", "teacher__name", "model__name",
                      "input_filename", "sweep__name"):  # fmt: skip
            match |= Q(**{f"{field}__icontains": word})
        number = word.removeprefix("#")
        if number.isascii() and number.isdigit() and len(number) < 19:
            match |= Q(pk=int(number))
        jobs = jobs.filter(match)
    return jobs


@dataclasses.dataclass(frozen=True)
class Condition:
    """One parsed condition, e.g. learning_rate <= 3e-5."""

    column: str
    op: str
    value: Any

    def __str__(self) -> str:
        return f"{self.column} {self.op} {_param_text(self.value) if self.value is not None else 'null'}"


_CONDITION = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|==|=|<|>)\s*(.+?)\s*")
_LOOKUPS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "=": "exact"}


def filterable() -> list[Column]:
    """The columns a condition may name: the numeric ones and every hyperparameter."""
    return [c for c in COLUMNS.values() if c.numeric or c.param]


def parse_conditions(text: str) -> list[Condition]:
    """Conditions separated by commas or "and": `name op value`, op one of < <= > >= = != (== is =). A numeric
    column compares with a number (duration in seconds); any hyperparameter also takes = and != with true,
    false, null or a word (scheduler = linear). Raises ValueError with a message a user can act on."""
    conditions = []
    for part in re.split(r",|\band\b", text.strip(), flags=re.IGNORECASE):
        if not part.strip():
            continue
        found = _CONDITION.fullmatch(part)
        if not found:
            raise ValueError(f"“{part.strip()[:60]}” is not a condition such as learning_rate <= 3e-5")
        name, op, raw = found.groups()
        op = "=" if op == "==" else op
        column = COLUMNS.get(name)
        if column is None or not (column.numeric or column.param):
            names = ", ".join(c.key for c in filterable())
            raise ValueError(f"no column “{name}” to filter on; these take conditions: {names}")
        conditions.append(Condition(name, op, _condition_value(column, op, raw)))
    return conditions


def _condition_value(column: Column, op: str, raw: str) -> Any:
    number = _float(raw)
    if column.numeric and number is not None:
        return number
    if column.numeric and raw.lower() != "null":
        raise ValueError(f"{column.key} compares with a number, not “{raw[:40]}”")
    if op not in ("=", "!="):
        raise ValueError(f"{column.key} takes = or != only")
    words = {"true": True, "false": False, "null": None}
    return words[raw.lower()] if raw.lower() in words else raw.strip("'\"")


def _float(raw: str) -> float | None:
    try:
        number = float(raw)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def apply_conditions(jobs: QuerySet[Job], conditions: list[Condition]) -> QuerySet[Job]:
    """Every condition holds: in SQL, on the columns' aliases (a run without the value never matches a
    comparison, and matches != of anything but null)."""
    for condition in conditions:
        column = COLUMNS[condition.column]
        value = condition.value
        if value is None:  # = null: the run has no such value; != null: it has one
            jobs = jobs.filter(**{f"{column.alias}__isnull": condition.op == "="})
            continue
        if column.key == "duration" and isinstance(value, float):
            value = timedelta(seconds=value)
        if isinstance(value, float) or isinstance(value, timedelta):
            lookup = {f"{column.alias}__{_LOOKUPS.get(condition.op, 'exact')}": value}
        else:  # a word or a boolean, against the hyperparameter's JSON value
            lookup = {f"params__{column.param}": value}
        jobs = jobs.exclude(**lookup) if condition.op == "!=" else jobs.filter(**lookup)
    return jobs


def ordering(key: str) -> list:
    """ORDER BY for ?sort=key or -key: runs without the value last either way, then newest first."""
    descending = key.startswith("-")
    alias = COLUMNS[key.lstrip("-")].alias
    first = F(alias).desc(nulls_last=True) if descending else F(alias).asc(nulls_last=True)
    return [first, F("pk").desc()]


def cell_text(column: Column, value: Any) -> str:
    return "—" if value is None or value == "" else column.text(value)


def table_rows(jobs, columns: list[Column]) -> list[dict[str, Any]]:
    """The page's rows: each job, the model id Compare takes (a run that made a model) and its cells."""
    rows = []
    for job in jobs:
        values = [column.value(job) for column in columns]
        cells = [(column, cell_text(column, value)) for column, value in zip(columns, values, strict=True)]
        rows.append({"job": job, "model_id": job.result_model_id, "cells": cells})
    return rows


def csv_rows(jobs: QuerySet[Job], keys: list[str]) -> Iterator[list[Any]]:
    """The header (the column keys), then one row per run of `jobs` as ordered, at most MAX_CSV_ROWS: numbers as
    numbers, booleans as true/false, times in ISO 8601, durations in seconds, nothing as an empty cell."""
    columns = [COLUMNS[key] for key in keys]
    yield [column.key for column in columns]
    count = 0
    for job in jobs[: MAX_CSV_ROWS + 1].iterator(chunk_size=500):
        count += 1
        if count > MAX_CSV_ROWS:
            yield [f"# cut at {MAX_CSV_ROWS} rows: narrow the view to export the rest"]
            return
        yield [_csv_value(column.value(job)) for column in columns]


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value
