"""A list filter that takes an id (?dataset=, ?sweep=, ?teacher=) chooses among the rows the requester may see:
another user's id gets the very answer a never-used id gets, so the filters tell nobody which ids exist;
staff, who see everything, still filter across users."""

from __future__ import annotations

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import ModelRecord
from jobs.sweeps import services as sweeps
from jobs.training.launch import LaunchSpec

pytestmark = pytest.mark.django_db

NEVER_USED = 987654
# (list, filter, which of bob's objects it names)
ID_FILTERS = [
    ("/api/jobs/", "dataset", "dataset"),
    ("/api/jobs/", "sweep", "sweep"),
    ("/api/sweeps/", "dataset", "dataset"),
    ("/api/models/", "teacher", "teacher"),
    ("/api/models/", "dataset", "dataset"),
]


@pytest.fixture
def bobs(other_user, sentiment_csv) -> dict:
    """Bob's dataset, a sweep of two jobs on it, a teacher and its student trained on it."""
    dataset = dataset_services.create_dataset(other_user, "bob's reviews", sentiment_csv)
    sweep = sweeps.create_sweep(other_user, LaunchSpec(kind="finetune", dataset=dataset), grid={"seed": [1, 2]})
    fields = {"params": {}, "metrics": {}, "label_names": ["a", "b"], "num_parameters": 1, "size_bytes": 1}
    teacher = ModelRecord.objects.create(owner=other_user, name="teacher", kind="finetune", **fields)
    student = ModelRecord.objects.create(
        owner=other_user, name="student", kind="distill", teacher=teacher, dataset=dataset, **fields
    )
    return {"dataset": dataset, "sweep": sweep, "teacher": teacher, "student": student}


@pytest.mark.parametrize(("url", "name", "target"), ID_FILTERS)
def test_another_users_id_gets_the_same_answer_as_a_never_used_one(api, bobs, url, name, target):
    theirs = api.get(url, {name: bobs[target].pk})
    unused = api.get(url, {name: NEVER_USED})
    assert (theirs.status_code, theirs.json()) == (unused.status_code, unused.json())
    assert theirs.status_code == 400
    assert theirs.json() == {name: ["Select a valid choice. That choice is not one of the available choices."]}


@pytest.mark.parametrize(("url", "name", "target"), ID_FILTERS)
def test_the_owner_filters_by_their_own_ids(other_api, bobs, url, name, target):
    response = other_api.get(url, {name: bobs[target].pk})
    assert response.status_code == 200 and response.json()["count"] > 0


def test_staff_filter_across_users(api, user, bobs):
    user.is_staff = True
    user.save()
    jobs = api.get("/api/jobs/", {"sweep": bobs["sweep"].pk})
    swept = sorted(bobs["sweep"].jobs.values_list("pk", flat=True))
    assert jobs.status_code == 200 and sorted(row["id"] for row in jobs.json()["results"]) == swept
    sweeps_on_it = api.get("/api/sweeps/", {"dataset": bobs["dataset"].pk}).json()["results"]
    assert [row["id"] for row in sweeps_on_it] == [bobs["sweep"].pk]
    students = api.get("/api/models/", {"teacher": bobs["teacher"].pk, "dataset": bobs["dataset"].pk}).json()
    assert [row["id"] for row in students["results"]] == [bobs["student"].pk]
    assert api.get("/api/models/", {"teacher": NEVER_USED}).status_code == 400


def test_the_browsable_apis_filter_form_offers_only_ones_own_rows(api, user, bobs, sentiment_csv):
    dataset_services.create_dataset(user, "alice's reviews", sentiment_csv)
    html = api.get("/api/jobs/", HTTP_ACCEPT="text/html").content.decode()
    assert "alice&#x27;s reviews" in html and "bob&#x27;s reviews" not in html
