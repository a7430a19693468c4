"""The HTML pages: login, dashboard, job and model pages, classify; they render and carry their forms."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Job, MetricPoint, ModelRecord
from jobs.registry import services as registry

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parent.parent

REPORT = {
    "accuracy": 0.9,
    "macro_f1": 0.9,
    "per_class": {
        "negative": {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 10},
        "positive": {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 10},
    },
    "confusion_matrix": [[9, 1], [1, 9]],
}


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


@pytest.fixture
def job(user, dataset):
    job = Job.objects.create(
        owner=user, kind=Job.Kind.FINETUNE, dataset=dataset, base_model="tiny", params={"batch_size": 16},
        status=Job.Status.RUNNING, progress=0.25, phase="tokenising",
    )
    MetricPoint.objects.create(job=job, seq=1, step=1, kind="train", values={"train/loss": 0.7, "lr": 1e-3})
    return job


@pytest.fixture
def record(user, dataset):
    return ModelRecord.objects.create(
        owner=user, name="tiny-reviews", kind=ModelRecord.Kind.FINETUNE, base_model="tiny", dataset=dataset,
        params={"batch_size": 16}, label_names=["negative", "positive"], num_parameters=1234, size_bytes=5678,
        metrics={"test/accuracy": 0.9, "val/accuracy": 0.85, "train/avg_loss": 0.4, "train/avg_accuracy": 0.8,
                 "test/report": REPORT},
    )


def _names(html: str) -> set[str]:
    return set(re.findall(r'name="([^"]+)"', html))


def test_the_login_page_renders_its_form(client):
    response = client.get("/accounts/login/?next=/classify/")
    assert response.status_code == 200
    html = response.content.decode()
    assert {"username", "password", "next", "csrfmiddlewaretoken"} <= _names(html)
    assert 'value="/classify/"' in html


def test_pages_need_a_login(client):
    for url in ("/", "/classify/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_dashboard_renders_both_forms_and_the_tables(logged_in, job, record):
    response = logged_in.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert {"name", "file", "text_column", "label_column"} <= _names(html)
    assert {"kind", "dataset", "base_model", "teacher", "batch_size", "learning_rate", "epochs", "max_length",
            "max_train_samples", "max_eval_samples", "alpha", "temperature"} <= _names(html)
    assert 'enctype="multipart/form-data"' in html
    assert f'data-job-id="{job.pk}"' in html and 'class="job-status"' in html
    assert '<td class="job-progress" title="tokenising">' in html  # what the running job is doing
    assert f'href="/jobs/{job.pk}/"' in html
    assert f'action="/models/{record.pk}/promote/"' in html
    assert 'title="95% interval 0.70–0.97, 20 test texts">0.90</span>' in html  # 20 rows support two decimals
    assert 'action="/accounts/logout/"' in html
    assert "js/jobs_live.js" in html


def test_an_invalid_job_form_comes_back_with_its_errors(logged_in, dataset):
    response = logged_in.post("/jobs/new/", {"kind": "finetune"})
    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()


def test_the_job_page_carries_the_live_endpoints(logged_in, job):
    response = logged_in.get(f"/jobs/{job.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-metrics-url="/api/jobs/{job.pk}/metrics/"' in html
    assert f'data-ws-path="/ws/jobs/{job.pk}/"' in html
    assert f'action="/jobs/{job.pk}/cancel/"' in html
    assert "vendor/chart.umd.min.js" in html and "js/job.js" in html
    assert '<span id="job-phase" class="muted small">tokenising</span>' in html


def test_the_model_page_embeds_its_metrics(logged_in, record):
    response = logged_in.get(f"/models/{record.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    embedded = re.search(r'<script id="model-metrics" type="application/json">(.*?)</script>', html, re.S)
    assert json.loads(embedded.group(1))["test/report"]["confusion_matrix"] == [[9, 1], [1, 9]]
    assert f'action="/models/{record.pk}/promote/"' in html


def test_classify_without_a_promoted_model_says_so(logged_in):
    response = logged_in.get("/classify/")
    assert response.status_code == 200
    assert "No promoted model yet" in response.content.decode()


def test_classify_with_a_promoted_model_shows_the_form(logged_in, record):
    registry.promote(record)
    response = logged_in.get("/classify/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="text"' in html and record.name in html


def test_the_pages_load_nothing_from_a_cdn():
    for path in list((REPO / "templates").rglob("*.html")) + list((REPO / "static" / "js").rglob("*.js")):
        text = path.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', text), path
    assert (REPO / "static" / "vendor" / "chart.umd.min.js").stat().st_size > 100_000
