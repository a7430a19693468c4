"""OPTIONS on an endpoint that also answers as CSV or PNG describes it in JSON whatever format is asked for
(?format= or Accept): the file renderers only know the endpoint's own data, and a metadata dict made them 500."""

from __future__ import annotations

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(user, sentiment_csv):
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    return Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="succeeded")


def _described(response, name: str) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["name"] == name
    return body


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_options_on_the_metrics_answers_json(api, job, fmt):
    body = _described(api.options(f"/api/jobs/{job.pk}/metrics/?format={fmt}"), "Metrics")
    assert "text/csv" in body["renders"]


def test_options_on_the_metrics_with_a_csv_accept_header_answers_json(api, job):
    _described(api.options(f"/api/jobs/{job.pk}/metrics/", HTTP_ACCEPT="text/csv"), "Metrics")


@pytest.mark.parametrize("fmt", ["csv", "png", "json"])
def test_options_on_the_comparison_answers_json(api, fmt):
    body = _described(api.options(f"/api/models/compare/?format={fmt}"), "Compare")
    assert {"text/csv", "image/png"} <= set(body["renders"])


@pytest.mark.parametrize("accept", ["text/csv", "image/png"])
def test_options_on_the_comparison_with_a_file_accept_header_answers_json(api, accept):
    _described(api.options("/api/models/compare/", HTTP_ACCEPT=accept), "Compare")


def test_options_says_nothing_of_another_users_job(other_api, job):
    # DRF describes the endpoint without reading the job: the same JSON for someone else's job and for none.
    theirs = other_api.options(f"/api/jobs/{job.pk}/metrics/?format=csv")
    unused = other_api.options("/api/jobs/987654/metrics/?format=csv")
    assert _described(theirs, "Metrics") == _described(unused, "Metrics")
