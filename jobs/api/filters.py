"""The API lists' filters (django-filter): what ?status=, ?kind=, ?dataset=, ?sweep=, ?teacher= and
?is_promoted= accept on /api/jobs/, /api/sweeps/ and /api/models/; and the runs page's (RunFilter), which
extends the jobs' with a search, conditions on any column and a sort.

A filter that takes an id chooses among the rows the requester may see (staff: all). Left to filterset_fields,
django-filter checked the id against every row of the table, so another user's id got a 200 with an empty list
while an unused id got a 400: a way to learn which ids exist. Now both get the same 400, "Select a valid choice".

Runs in: the web process.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters

from ..models import Dataset, Job, ModelRecord, Sweep
from ..training import runs


def visible(model):
    """A queryset callable of the request (as ModelChoiceFilter takes one): the rows of `model` it may see."""

    def rows(request):
        if request is None:  # a FilterSet built without a request (the schema generator) chooses among none
            return model.objects.none()
        return model.objects.visible_to(request.user)

    return rows


class JobFilter(filters.FilterSet):
    sweep = filters.ModelChoiceFilter(queryset=visible(Sweep))
    dataset = filters.ModelChoiceFilter(queryset=visible(Dataset))

    class Meta:
        model = Job
        fields = ["status", "kind", "sweep", "dataset"]


class SweepFilter(filters.FilterSet):
    dataset = filters.ModelChoiceFilter(queryset=visible(Dataset))

    class Meta:
        model = Sweep
        fields = ["kind", "dataset"]


class ModelRecordFilter(filters.FilterSet):
    teacher = filters.ModelChoiceFilter(queryset=visible(ModelRecord))
    dataset = filters.ModelChoiceFilter(queryset=visible(Dataset))

    class Meta:
        model = ModelRecord
        fields = ["kind", "teacher", "dataset", "is_promoted"]


class ConditionsField(forms.CharField):
    """Conditions such as "learning_rate <= 3e-5, test_accuracy >= 0.8", parsed (training.runs)."""

    def to_python(self, value):
        try:
            return runs.parse_conditions(super().to_python(value))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class ConditionsFilter(filters.Filter):
    field_class = ConditionsField

    def filter(self, qs, value):
        return runs.apply_conditions(qs, value) if value else qs


class RunOrderingFilter(filters.OrderingFilter):
    """?sort=column or -column on any column of the runs table; runs without the value come last either way."""

    def filter(self, qs, value):
        keys = [key for key in value or () if key]
        return qs.order_by(*runs.ordering(keys[0])) if keys else qs


class RunFilter(JobFilter):
    """The runs page's query string, applied in the database to training.runs.runs(user): ?q= searches names,
    ?kind=, ?status= and ?dataset= (each repeatable) and ?sweep= choose, ?where= holds conditions on any
    hyperparameter or metric, ?sort= orders. None of them joins a to-many relation, so no DISTINCT."""

    q = filters.CharFilter(method="search", label="Search")
    kind = filters.MultipleChoiceFilter(choices=Job.Kind.choices, distinct=False)
    status = filters.MultipleChoiceFilter(choices=Job.Status.choices, distinct=False)
    dataset = filters.ModelMultipleChoiceFilter(queryset=visible(Dataset), distinct=False)
    where = ConditionsFilter(label="Where")
    sort = RunOrderingFilter(fields=[(column.alias, key) for key, column in runs.COLUMNS.items()])

    def search(self, qs, name, value):
        return runs.search(qs, value)
