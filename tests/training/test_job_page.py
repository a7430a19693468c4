"""The job page as the server renders it: how long the job took in words a person reads, its hyperparameters
split into those set apart from the defaults and the defaults, and a file classification's result at a glance."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.datasets import services as dataset_services
from jobs.models import Job
from jobs.templatetags.durations import duration_text
from mlcore.config import TrainConfig, config_defaults
from tests.htmltree import Node, parse

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def page(client, job) -> Node:
    response = client.get(f"/jobs/{job.pk}/")
    assert response.status_code == 200
    return parse(response.content)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (47, "47 s"), (59.9, "59 s"), (60, "1 min"), (192, "3 min 12 s"), (3600, "1 h"), (7500, "2 h 5 min")],
)
def test_a_duration_reads_in_seconds_under_a_minute_then_minutes_and_hours(seconds, words):
    assert duration_text(seconds) == words


def test_a_47_second_job_says_47_s_not_0_minutes(logged_in, user, dataset):
    start = timezone.now() - timedelta(minutes=5)
    job = Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="succeeded",
                             started_at=start, finished_at=start + timedelta(seconds=47.4))  # fmt: skip
    html = page(logged_in, job)
    assert html.select_one("#job-duration").text() == "47 s"
    assert not html.select_one("#job-duration-item").has_attr("hidden")


def test_a_running_job_has_its_duration_row_hidden_until_it_ends(logged_in, user, dataset):
    job = Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="running",
                             started_at=timezone.now())  # fmt: skip
    html = page(logged_in, job)
    assert html.select_one("#job-duration-item").has_attr("hidden")
    assert html.select_one("#job-page")["data-started-at"] == job.started_at.isoformat()


def test_hyperparameters_set_apart_from_the_defaults_come_first_with_their_default(logged_in, user, dataset):
    params = config_defaults(TrainConfig) | {"learning_rate": 3e-3, "epochs": 5, "max_length": 32}
    job = Job.objects.create(owner=user, kind="finetune", dataset=dataset, params=params, status="queued")
    html = page(logged_in, job)
    changed = {tr["data-param"]: [td.text() for td in tr.select("td")] for tr in html.select("#params-set tr")}
    assert changed == {
        "max_length": ["32", "default 128"],
        "learning_rate": ["0.003", "default 0.00002"],
        "epochs": ["5", "default 1"],
    }
    kept = [tr["data-param"] for tr in html.select("#params-default tr")]
    assert kept == [name for name in config_defaults(TrainConfig) if name not in changed]
    assert "3 set by you" in html.select_one("#hyperparameters .aside").text()


def test_a_distillation_is_compared_with_the_distillation_defaults(logged_in, user, dataset, trained_model):
    from mlcore.config import DistillConfig

    params = config_defaults(DistillConfig) | {"alpha": 0.7}
    job = Job.objects.create(owner=user, kind="distill", dataset=dataset, teacher=trained_model, params=params)
    html = page(logged_in, job)
    assert [tr["data-param"] for tr in html.select("#params-set tr")] == ["alpha"]
    assert html.select_one("#chart-distill") is not None  # its loss parts get a chart of their own
    assert "α = 0.7" in html.select_one("#distill-card .aside").text()


def test_a_file_classification_shows_its_label_counts_and_first_rows(logged_in, user, trained_model):
    summary = {
        "label_counts": {"negative": 3, "positive": 1},
        "first_rows": [
            {"row": 1, "id": "a", "label": "negative", "probability": 0.91234, "text": "dull <b>film</b>"},
            {"row": 2, "id": "b", "label": "positive", "probability": 0.5, "text": "fine"},
        ],
    }
    job = Job.objects.create(owner=user, kind="classify", model=trained_model, params={"rows": 4, "text_column": "t"},
                             status="succeeded", output_file="classify/output/x/t-classified.csv",
                             output_summary=summary)  # fmt: skip
    html = page(logged_in, job)
    counts = {row["data-label"]: row.select_one(".value").text() for row in html.select("#label-counts .prob-row")}
    assert counts == {"negative": "3 · 75%", "positive": "1 · 25%"}
    assert html.select_one('#label-counts [data-label="negative"] .bar span')["style"] == "width: 75%"
    rows = [[td.text() for td in tr.select("td")] for tr in html.select("#first-rows tbody tr")]
    assert rows == [["1", "a", "negative", "0.9123", "dull <b>film</b>"], ["2", "b", "positive", "0.5000", "fine"]]
    assert html.select_one("#output-link") is not None and html.select_one("#chart-loss") is None


def test_a_file_classification_still_running_has_an_empty_result_box_the_page_fills(logged_in, user, trained_model):
    job = Job.objects.create(owner=user, kind="classify", model=trained_model, params={"rows": 4}, status="running")
    box = page(logged_in, job).select_one("#classify-result")
    assert box is not None and box.text() == ""
