"""The API lists' filters (django-filter): what ?status=, ?kind=, ?dataset=, ?sweep=, ?teacher= and
?is_promoted= accept on /api/jobs/, /api/sweeps/ and /api/models/.

A filter that takes an id chooses among the rows the requester may see (staff: all). Left to filterset_fields,
django-filter checked the id against every row of the table, so another user's id got a 200 with an empty list
while an unused id got a 400: a way to learn which ids exist. Now both get the same 400, "Select a valid choice".

Runs in: the web process.
"""

from __future__ import annotations

from django_filters import rest_framework as filters

from ..models import Dataset, Job, ModelRecord, Sweep


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
