"""A newcomer's whole journey in a real browser, against the real web server, worker, Redis and database: log in,
upload, fine-tune and watch it live, distil from the model page, compare, try a text, download, promote, classify
a text with its explanation and a file; then a long job reloaded mid-run and cancelled from its page.

Each page is saved at desktop width and at 390 px (tests/browser/conftest.py `shoot`); any console error, failed
request or unexpected 4xx/5xx fails the test.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from jobs.models import Job, MetricPoint
from mlcore.testing import sentiment_rows
from tests.browser.conftest import log_in, shoot
from tests.conftest import csv_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]

JOB_TIMEOUT_MS = 300_000  # a tiny job on a busy 2-core machine, worker start included
ROWS = sentiment_rows(160)
LABELS = sorted({label for _, label in ROWS})

# The Chart.js dataset of the raw training loss on the job page: one entry per stored train point.
TRAIN_LOSS = """() => {
  const chart = window.Chart && window.Chart.getChart("chart-loss");
  const ds = chart && chart.data.datasets.find((d) => d.label === "train loss");
  return ds ? ds.data.map((p) => p.x) : [];
}"""


def train_steps(page) -> list[int]:
    return page.evaluate(TRAIN_LOSS)


def job_status(page) -> str:
    return page.locator("#job-page").get_attribute("data-status")


def wait_for_status(page, *statuses: str) -> str:
    page.wait_for_function(
        "wanted => { const p = document.getElementById('job-page'); return p && wanted.includes(p.dataset.status); }",
        arg=list(statuses),
        timeout=JOB_TIMEOUT_MS,
    )  # fmt: skip
    return job_status(page)


def job_of(page) -> Job:
    return Job.objects.get(pk=int(re.search(r"/jobs/(\d+)/", page.url)[1]))


def stored_train_steps(job: Job) -> list[int]:
    return list(MetricPoint.objects.filter(job=job, kind="train").order_by("seq").values_list("step", flat=True))


def fill(form, fields: dict) -> None:
    """Type into the form's fields by their visible labels, as a person does."""
    for label, value in fields.items():
        form.get_by_label(label, exact=True).fill(str(value))


def launch(page, fields: dict) -> Job:
    """Fill the dashboard's launch form (already showing the right kind) and launch; lands on the job page."""
    form = page.locator("#job-form")
    fill(form, fields)
    form.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    return job_of(page)


def nav(page, name: str) -> None:
    """Follow a link of the top navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()
    page.wait_for_load_state()


def downloaded(page, locator) -> bytes:
    with page.expect_download() as info:
        locator.click()
    return info.value.path().read_bytes()


def test_the_whole_journey(page, site, tiny_bert, celery_worker, browser_user):
    page.goto(site.url + "/")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    shoot(page, "login")
    log_in(page, site, browser_user)
    shoot(page, "dashboard-new")
    nav(page, "Classify")
    assert "No promoted model yet" in page.locator("main").inner_text()
    shoot(page, "classify-no-model")
    nav(page, "Dashboard")

    # Upload a CSV: the dataset page shows the rows and the token-length histogram once the preview is made.
    upload = page.locator("#upload")
    upload.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "reviews.csv", "mimeType": "text/csv", "buffer": csv_bytes(ROWS)}]
    )
    upload.get_by_label("Name", exact=True).fill("reviews")
    upload.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"))
    page.locator("#sample-rows tbody tr").first.wait_for()
    assert page.locator("#sample-rows tbody tr").count() >= 5
    assert page.locator("#token-histogram").is_visible()
    distribution = page.locator("#label-distribution").text_content()
    assert all(label in distribution for label in LABELS)
    shoot(page, "dataset")

    # A tiny fine-tune from the dataset page's link: its points appear on the chart while it runs.
    page.locator("#train-link").click()
    job = launch(page, {"Base model": tiny_bert, "Batch size": 4, "Learning rate": "3e-3", "Epochs": 5,
                        "Max length": 32})  # fmt: skip
    assert job.kind == Job.Kind.FINETUNE and job.dataset.name == "reviews"
    page.wait_for_function(f"({TRAIN_LOSS})().length > 0", timeout=JOB_TIMEOUT_MS)
    seen_running, first_count = job_status(page), len(train_steps(page))
    shoot(page, "job-running")
    assert wait_for_status(page, "succeeded", "failed") == "succeeded"
    steps = train_steps(page)
    assert seen_running == "running" and 0 < first_count < len(steps), (seen_running, first_count, len(steps))
    assert steps == stored_train_steps(job), "the chart holds each stored point once, in order"
    shoot(page, "job-succeeded")

    # Its model, then a distillation launched from the model page.
    page.locator("#result-link").click()
    page.wait_for_url(re.compile(r"/models/\d+/$"))
    teacher = Job.objects.get(pk=job.pk).result_model
    assert teacher is not None and page.url.endswith(f"/models/{teacher.pk}/")
    shoot(page, "model")
    page.locator("#distil-link").click()
    assert page.locator("#job-form").get_by_label("Kind", exact=True).input_value() == "distill"
    student_job = launch(page, {"Batch size": 16, "Epochs": 3, "Max length": 32})
    assert student_job.kind == Job.Kind.DISTILL and student_job.teacher_id == teacher.pk
    assert wait_for_status(page, "succeeded", "failed") == "succeeded"
    page.locator("#result-link").click()
    page.wait_for_url(re.compile(r"/models/\d+/$"))
    student = Job.objects.get(pk=student_job.pk).result_model

    # Compare the two; try a text on both; download the comparison as CSV and PNG.
    page.locator("#compare-link").click()
    page.wait_for_url(re.compile(r"/compare/"))
    assert page.locator("#compare-table tbody tr[data-model-id]").count() == 2
    page.locator("#try-form textarea").fill("a wonderful film, loved the cast")
    page.locator("#try-form").get_by_role("button").click()
    page.locator("#try-results").wait_for()
    answers = page.locator("#try-results tbody tr")
    assert answers.count() == 2
    assert all(answers.nth(i).locator("td").nth(1).inner_text().split(" ")[0] in LABELS for i in range(2))
    shoot(page, "compare")
    table = list(csv.DictReader(io.StringIO(downloaded(page, page.locator("#download-csv")).decode())))
    assert sorted(int(row["id"]) for row in table) == sorted([teacher.pk, student.pk])
    assert downloaded(page, page.locator("#download-png")).startswith(b"\x89PNG\r\n\x1a\n")

    # Promote the student from its page; classify a text: a label, a bar per class, the explanation.
    page.goto(f"{site.url}/models/{student.pk}/")
    if page.locator("#id_override").count():  # the promote guard's verdict rests on a tiny run's accuracies
        page.locator("#id_override").check()
    page.get_by_role("button", name="Promote").click()
    page.wait_for_load_state()
    student.refresh_from_db()
    assert student.is_promoted
    nav(page, "Classify")
    page.get_by_label("Text", exact=True).fill("boring movie, awful ending")
    page.get_by_role("button", name="Classify", exact=True).click()
    assert page.locator(".prediction-label").inner_text() in LABELS
    assert page.locator("#prediction .prob-bars .bar").count() == len(LABELS)
    page.locator("#explain-button").click()
    page.locator("#explanation .xp-token").first.wait_for()
    assert "boring" in page.locator("#explanation .xp-token").all_text_contents()
    shoot(page, "classify")

    # Classify a file: a job of its own, whose page offers the answers as CSV.
    texts = [text for text, _ in ROWS[:12]]
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "texts.csv", "mimeType": "text/csv", "buffer": csv_bytes([(t,) for t in texts], ("text",))}]
    )
    page.get_by_role("button", name="Classify file").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    assert wait_for_status(page, "succeeded", "failed") == "succeeded"
    page.locator("#output-link:not([hidden])").wait_for()
    answered = list(csv.DictReader(io.StringIO(downloaded(page, page.locator("#output-link")).decode())))
    assert [row["text"] for row in answered] == texts and {row["label"] for row in answered} <= set(LABELS)
    shoot(page, "job-classify-file")

    # A sweep of two learning rates (several values in one field), seen on its page and cancelled.
    nav(page, "Dashboard")
    shoot(page, "dashboard")
    form = page.locator("#job-form")
    dataset_select = form.get_by_label("Dataset", exact=True)
    assert "reviews" in dataset_select.locator("option").nth(1).inner_text()
    dataset_select.select_option(index=1)
    fill(form, {"Base model": tiny_bert, "Learning rate": "1e-3, 3e-3", "Epochs": 1, "Max length": 32})
    form.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(r"/sweeps/\d+/$"))
    assert page.locator("#jobs-table tbody tr[data-job-id]").count() == 2
    shoot(page, "sweep")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#cancel-form").get_by_role("button").click()
    page.get_by_text(re.compile("Cancel requested for 2 jobs")).wait_for()

    # The account page and the API's docs.
    page.get_by_role("link", name=browser_user.get_username()).click()
    page.wait_for_url(re.compile(r"/account/token/$"))
    shoot(page, "account")
    nav(page, "API docs")
    page.locator(".swagger-ui .opblock").first.wait_for()
    shoot(page, "api-docs")


def test_a_long_job_reloaded_mid_run_then_cancelled_from_its_page(signed_in, site, tiny_bert, celery_worker):
    page = signed_in
    upload = page.locator("#upload")
    upload.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "long.csv", "mimeType": "text/csv", "buffer": csv_bytes(ROWS)}]
    )
    upload.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"))
    page.locator("#train-link").click()
    job = launch(page, {"Base model": tiny_bert, "Batch size": 2, "Epochs": 50, "Max length": 32})

    # Reload while it runs: the history and the live points join with every step once.
    page.wait_for_function(f"({TRAIN_LOSS})().length > 3", timeout=JOB_TIMEOUT_MS)
    assert job_status(page) == "running"
    page.reload()
    page.wait_for_function(f"({TRAIN_LOSS})().length > 0", timeout=JOB_TIMEOUT_MS)
    before = train_steps(page)
    page.wait_for_function(f"({TRAIN_LOSS})().length > {len(before)}", timeout=JOB_TIMEOUT_MS)
    during = train_steps(page)
    assert during == sorted(set(during)) and during[: len(before)] == before

    # Cancel from the page (its confirm dialog accepted): the job ends cancelled, the chart holds what was stored.
    page.on("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():  # the cancel posts, then comes back to the job page
        page.locator("#cancel-form").get_by_role("button").click()
    assert wait_for_status(page, "cancelled", "succeeded", "failed") == "cancelled"
    stored = stored_train_steps(job)
    page.wait_for_function(f"({TRAIN_LOSS})().length >= {len(stored)}", timeout=JOB_TIMEOUT_MS)
    assert train_steps(page) == stored and len(stored) == len(set(stored))
    assert page.locator("#cancel-form").is_hidden()
    shoot(page, "job-cancelled")
