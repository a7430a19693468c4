"""The API's lists filter by their obvious fields (?status=, ?kind=, ?sweep=, ...), within what the user may
see; a value that is not a choice (another user's id among them) gets a 400 naming it."""

from __future__ import annotations

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Job, ModelRecord
from jobs.registry import services as registry
from jobs.sweeps import services as sweeps
from jobs.training.launch import LaunchSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


def test_jobs_filter_by_status_kind_sweep_and_dataset(api, other_api, user, other_user, dataset):
    sweep = sweeps.create_sweep(user, LaunchSpec(kind="finetune", dataset=dataset), grid={"seed": [1, 2]})
    swept = sorted(sweep.jobs.values_list("pk", flat=True))
    running = Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="running")
    Job.objects.create(owner=other_user, kind="finetune", dataset=dataset, params={}, status="running")

    assert _ids(api.get("/api/jobs/?status=running")) == [running.pk]  # not bob's
    assert _ids(api.get(f"/api/jobs/?sweep={sweep.pk}")) == swept
    assert _ids(api.get(f"/api/jobs/?status=queued&kind=finetune&dataset={dataset.pk}")) == swept
    assert _ids(api.get("/api/jobs/?kind=distill")) == []
    theirs = other_api.get(f"/api/jobs/?sweep={sweep.pk}")  # bob may not name alice's sweep, as if it did not exist
    assert theirs.status_code == 400 and list(theirs.json()) == ["sweep"]
    bad = api.get("/api/jobs/?status=done")
    assert bad.status_code == 400 and "done" in str(bad.json()["status"])


def test_models_filter_by_kind_teacher_and_promotion(api, user, trained_model):
    student = ModelRecord.objects.create(
        owner=user, name="student", kind="distill", teacher=trained_model, params={}, metrics={},
        label_names=["negative", "positive"], num_parameters=1, size_bytes=1,
    )  # fmt: skip
    registry.promote(student)
    assert _ids(api.get("/api/models/?kind=distill")) == [student.pk]
    assert _ids(api.get(f"/api/models/?teacher={trained_model.pk}")) == [student.pk]
    assert _ids(api.get("/api/models/?is_promoted=false")) == [trained_model.pk]
    assert _ids(api.get("/api/sweeps/?kind=distill")) == []
