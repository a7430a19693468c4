"""A job's metric points download as a CSV, a column per metric; errors stay JSON."""

from __future__ import annotations

import csv
import io

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Job, MetricPoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(user, sentiment_csv):
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    job = Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="succeeded")
    points = [
        (1, 1, "train", {"train/loss": 0.7, "train/accuracy": 0.5, "lr": 2e-5}),
        (2, 2, "train", {"train/loss": 0.6, "train/accuracy": 0.6, "lr": 2e-5}),
        (3, 2, "val", {"val/accuracy": 0.75}),
        (4, 2, "test", {"test/accuracy": 0.8, "test/report": {"x": 1}}),
    ]
    MetricPoint.objects.bulk_create([MetricPoint(job=job, seq=q, step=t, kind=k, values=v) for q, t, k, v in points])
    return job


def test_the_points_come_as_one_line_each_with_a_column_per_metric(api, job):
    response = api.get(f"/api/jobs/{job.pk}/metrics/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="distillery-job-{job.pk}-metrics.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["seq", "step", "kind", "created_at", "train/accuracy", "train/loss", "lr", "val/accuracy",
                       "test/accuracy"]  # fmt: skip
    assert [r[:3] + r[4:] for r in rows[1:]] == [
        ["1", "1", "train", "0.5", "0.7", "2e-05", "", ""],
        ["2", "2", "train", "0.6", "0.6", "2e-05", "", ""],
        ["3", "2", "val", "", "", "", "0.75", ""],
        ["4", "2", "test", "", "", "", "", "0.8"],
    ]
    later = list(csv.reader(io.StringIO(api.get(f"/api/jobs/{job.pk}/metrics/?format=csv&after=2").content.decode())))
    assert [r[0] for r in later[1:]] == ["3", "4"]


def test_errors_stay_json_and_the_page_links_the_csv(api, other_api, logged_in, job):
    bad = api.get(f"/api/jobs/{job.pk}/metrics/?format=csv&after=x")
    assert bad.status_code == 400 and bad.json() == {"after": "must be an integer"}
    assert other_api.get(f"/api/jobs/{job.pk}/metrics/?format=csv").status_code == 404
    assert api.get(f"/api/jobs/{job.pk}/metrics/").json()[0]["values"]["train/loss"] == 0.7  # JSON by default
    html = logged_in.get(f"/jobs/{job.pk}/").content.decode()
    assert f'href="/api/jobs/{job.pk}/metrics/?format=csv"' in html
