"""Users see and control only their own datasets, jobs and models; anonymous requests are refused."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db

ROWS = [("good movie", "pos"), ("bad movie", "neg")]


@pytest.fixture
def alices_dataset(api):
    return api.post("/api/datasets/", {"file": SimpleUploadedFile("a.csv", csv_bytes(ROWS))}, format="multipart").json()


def test_anonymous_api_requests_are_refused(client):
    for url in ("/api/datasets/", "/api/jobs/", "/api/models/"):
        assert client.get(url).status_code in (401, 403)
    assert client.post("/api/classify/", {"text": "hi"}, content_type="application/json").status_code in (401, 403)


def test_a_user_does_not_see_another_users_dataset(api, other_api, alices_dataset):
    assert [d["id"] for d in api.get("/api/datasets/").json()["results"]] == [alices_dataset["id"]]
    assert other_api.get("/api/datasets/").json()["results"] == []
    assert other_api.get(f"/api/datasets/{alices_dataset['id']}/").status_code == 404


def test_a_user_cannot_launch_a_job_on_another_users_dataset(other_api, alices_dataset):
    response = other_api.post("/api/jobs/", {"kind": "finetune", "dataset": alices_dataset["id"]}, format="json")
    assert response.status_code == 400
    assert "does not exist" in str(response.json()["dataset"])
    assert Job.objects.count() == 0


def test_a_user_cannot_see_cancel_or_read_metrics_of_another_users_job(api, other_api, alices_dataset):
    job = api.post("/api/jobs/", {"kind": "finetune", "dataset": alices_dataset["id"]}, format="json").json()
    for request in (
        lambda: other_api.get(f"/api/jobs/{job['id']}/"),
        lambda: other_api.get(f"/api/jobs/{job['id']}/metrics/"),
        lambda: other_api.post(f"/api/jobs/{job['id']}/cancel/"),
    ):
        assert request().status_code == 404
    assert Job.objects.get().status == "queued"


def test_a_user_cannot_see_or_promote_another_users_model(other_api, trained_model):
    assert other_api.get("/api/models/").json()["results"] == []
    assert other_api.get(f"/api/models/{trained_model.pk}/").status_code == 404
    assert other_api.post(f"/api/models/{trained_model.pk}/promote/").status_code == 404
    trained_model.refresh_from_db()
    assert trained_model.is_promoted is False


def test_staff_see_everyones_jobs(admin_client, api, alices_dataset):
    job = api.post("/api/jobs/", {"kind": "finetune", "dataset": alices_dataset["id"]}, format="json").json()
    assert [j["id"] for j in admin_client.get("/api/jobs/").json()["results"]] == [job["id"]]


def test_the_dashboard_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
