"""The live job page in a real browser, against the real web server, Redis and database (no worker: the test writes
what a worker would, through the same functions): the learning-rate axis labels each tick differently, hovering
shows exact values, a drag zooms every chart, the x-axis switches between step, epoch and time, throughput and
memory are charted, a distillation's loss parts are labelled apart from cross-entropy, the job's log arrives live,
a finished job says how long it took, and a file classification shows its result when it ends."""

from __future__ import annotations

import logging
import math
import re
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.datasets import services as dataset_services
from jobs.models import Job, MetricPoint
from jobs.training import joblog, lifecycle
from mlcore.config import DistillConfig, config_defaults
from tests.browser.conftest import shoot
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db(transaction=True)

STEPS = 40
PER_EPOCH = 20


def chart(page, canvas: str, expression: str):
    """Evaluate `expression` with `c` bound to the Chart.js chart on canvas `canvas`."""
    return page.evaluate(f"() => {{ const c = window.Chart.getChart({canvas!r}); return {expression}; }}")


def as_worker(work) -> None:
    """Run `work` in a thread of its own, as a worker would: Playwright's sync API keeps an event loop running in
    the test's thread, where the channel layer's async_to_sync refuses to send."""
    from django.db import connection

    failures = []

    def run():
        try:
            work()
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if failures:
        raise failures[0]


def settled(page) -> None:
    """Wait until the page has drawn what it was just given (its charts update on the next animation frame)."""
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def data_of(page, canvas: str, label: str) -> list[dict]:
    return chart(page, canvas, f"c.data.datasets.find((d) => d.label === {label!r}).data.map((p) => ({{...p}}))")


@pytest.fixture
def dataset(browser_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return dataset_services.create_dataset(
        browser_user, "reviews", SimpleUploadedFile("r.csv", csv_bytes([("good", "pos"), ("bad", "neg")]))
    )


def train_values(step: int, started) -> dict:
    return {
        "train/loss": 0.7 / (1 + step / 10) + (0.0001 * math.pi if step == 10 else 0),
        "train/accuracy": min(1.0, 0.5 + step / 80),
        "lr": 2e-5 * 0.9995**step,  # 2.0e-5 to 1.96e-5: one digit would print "2.0e-5" on every tick
        "epoch": step / PER_EPOCH,
        "time": started.timestamp() + 5 + 2 * step,
        "train/samples_per_s": 100.0 + step,
        **({"system/rss_mb": 900.0 + step} if step % 5 == 1 else {}),
    }


@pytest.fixture
def finished_job(browser_user, dataset):
    started = timezone.now() - timedelta(minutes=10)
    job = Job.objects.create(
        owner=browser_user, kind="finetune", dataset=dataset, params={"epochs": 2}, status="succeeded", progress=1.0,
        started_at=started, finished_at=started + timedelta(seconds=97),
    )  # fmt: skip
    points = [MetricPoint(job=job, seq=s, step=s, kind="train", values=train_values(s, started)) for s in range(1, 41)]
    points += [
        MetricPoint(job=job, seq=41, step=20, kind="val", values={"val/loss": 0.4, "val/accuracy": 0.8}),
        MetricPoint(job=job, seq=42, step=40, kind="val", values={"val/loss": 0.3, "val/accuracy": 0.85}),
    ]
    MetricPoint.objects.bulk_create(points)
    return job


def open_job(page, site, job):
    page.goto(f"{site.url}/jobs/{job.pk}/")
    page.wait_for_function("() => document.querySelector('.chart-empty').hidden")


def test_the_learning_rate_ticks_differ_and_a_hover_shows_the_exact_value(signed_in, site, finished_job):
    page = signed_in
    open_job(page, site, finished_job)
    labels = chart(page, "chart-lr", "c.scales.y.ticks.map((t) => t.label)")
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    assert all(re.fullmatch(r"\d\.\d{2,}e-5", label) for label in labels), labels

    # Hover over step 10 of the raw training loss: the tooltip names the step, epoch and time, and the value to 6
    # significant digits.
    x, y = chart(page, "chart-loss", "(() => { const p = c.getDatasetMeta(0).data[9]; return [p.x, p.y]; })()")
    box = page.locator("#chart-loss").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_function("() => window.Chart.getChart('chart-loss').tooltip.opacity > 0")
    title = chart(page, "chart-loss", "c.tooltip.title")
    lines = chart(page, "chart-loss", "c.tooltip.body.flatMap((b) => b.lines)")
    assert title == ["step 10 · epoch 0.50 · 0:25"]
    expected = 0.7 / 2 + 0.0001 * math.pi
    assert f"train loss: {float(f'{expected:.6g}')}" in lines
    shoot(page, "job-finished")


def test_the_x_axis_switches_between_step_epoch_and_time(signed_in, site, finished_job):
    page = signed_in
    open_job(page, site, finished_job)
    assert [p["x"] for p in data_of(page, "chart-loss", "train loss")] == list(range(1, STEPS + 1))
    page.get_by_label("epoch", exact=True).check()
    assert [p["x"] for p in data_of(page, "chart-accuracy", "train accuracy")] == [
        pytest.approx(s / PER_EPOCH) for s in range(1, STEPS + 1)
    ]
    # Validation points sit at the epoch of their step.
    assert [p["x"] for p in data_of(page, "chart-accuracy", "val accuracy")] == [1.0, 2.0]
    assert chart(page, "chart-accuracy", "c.options.scales.x.title.text") == "epoch"
    page.get_by_label("time", exact=True).check()
    settled(page)
    # Seconds since the job started (the points were reported 5 s + 2 s a step after it).
    assert [p["x"] for p in data_of(page, "chart-lr", "learning rate")] == [
        pytest.approx(5 + 2 * s, abs=0.01) for s in range(1, STEPS + 1)
    ]
    ticks = chart(page, "chart-lr", "c.scales.x.ticks.map((t) => t.label)")
    assert ticks[:3] == ["0:00", "0:10", "0:20"] and ticks[-1] == "1:30", ticks  # 7 s to 85 s after the start
    page.get_by_label("step", exact=True).check()
    assert [p["x"] for p in data_of(page, "chart-loss", "train loss")] == list(range(1, STEPS + 1))


def test_a_drag_zooms_every_chart_to_the_same_steps_and_reset_undoes_it(signed_in, site, finished_job):
    page = signed_in
    open_job(page, site, finished_job)
    area = chart(page, "chart-loss", "[c.chartArea.left, c.chartArea.right, c.chartArea.top, c.chartArea.bottom]")
    box = page.locator("#chart-loss").bounding_box()
    left, right = area[0] + 0.25 * (area[1] - area[0]), area[0] + 0.5 * (area[1] - area[0])
    y = (area[2] + area[3]) / 2
    page.mouse.move(box["x"] + left, box["y"] + y)
    page.mouse.down()
    page.mouse.move(box["x"] + right, box["y"] + y, steps=8)
    page.mouse.up()
    zoomed = chart(page, "chart-loss", "[c.scales.x.min, c.scales.x.max]")
    assert 5 < zoomed[0] < zoomed[1] < 30, zoomed
    for other in ("chart-accuracy", "chart-lr", "chart-throughput", "chart-memory"):
        assert chart(page, other, "[c.scales.x.min, c.scales.x.max]") == pytest.approx(zoomed)
    page.get_by_role("button", name="Reset zoom").click()
    assert chart(page, "chart-accuracy", "c.scales.x.max") >= STEPS
    assert page.get_by_role("button", name="Reset zoom").is_hidden()


def test_throughput_and_memory_are_charted_over_time(signed_in, site, finished_job):
    page = signed_in
    open_job(page, site, finished_job)
    assert [p["y"] for p in data_of(page, "chart-throughput", "samples/s")] == [100.0 + s for s in range(1, 41)]
    assert [(p["x"], p["y"]) for p in data_of(page, "chart-memory", "process memory (RSS)")] == [
        (s, 900.0 + s) for s in range(1, 41, 5)
    ]
    # No GPU on this job: its series is not in the legend.
    legend = chart(page, "chart-memory", "c.legend.legendItems.map((i) => i.text)")
    assert legend == ["process memory (RSS)"]


def test_a_distillations_loss_parts_are_charted_apart_from_cross_entropy(signed_in, site, browser_user, dataset):
    page = signed_in
    from jobs.models import ModelRecord

    teacher = ModelRecord.objects.create(
        owner=browser_user, name="teacher", kind="finetune", params={}, metrics={}, label_names=["neg", "pos"],
        num_parameters=1, size_bytes=1,
    )  # fmt: skip
    job = Job.objects.create(
        owner=browser_user, kind="distill", dataset=dataset, teacher=teacher, status="succeeded",
        params=config_defaults(DistillConfig) | {"alpha": 0.7},
    )  # fmt: skip
    parts = [(0.9, 0.5), (0.7, 0.4), (0.5, 0.35)]
    MetricPoint.objects.bulk_create(
        [
            MetricPoint(
                job=job,
                seq=i + 1,
                step=i + 1,
                kind="train",
                values={
                    "train/loss": 0.7 * soft + 0.3 * hard,
                    "train/soft_loss": soft,
                    "train/hard_loss": hard,
                    "train/accuracy": 0.6,
                    "lr": 2e-5,
                    "epoch": (i + 1) / 3,
                },
            )  # fmt: skip
            for i, (soft, hard) in enumerate(parts)
        ]
        + [MetricPoint(job=job, seq=4, step=3, kind="val", values={"val/loss": 0.36, "val/accuracy": 0.8})]
    )
    open_job(page, site, job)
    # The loss chart is cross-entropy throughout: training's hard part beside validation's.
    assert [p["y"] for p in data_of(page, "chart-loss", "train cross-entropy (hard part)")] == [0.5, 0.4, 0.35]
    assert [p["y"] for p in data_of(page, "chart-loss", "val loss (cross-entropy)")] == [0.36]
    assert chart(page, "chart-loss", "c.options.scales.y.title.text") == "cross-entropy"
    # The distillation loss and its parts, each labelled.
    assert [p["y"] for p in data_of(page, "chart-distill", "distillation loss")] == [
        pytest.approx(0.7 * s + 0.3 * h) for s, h in parts
    ]
    legend = chart(page, "chart-distill", "c.legend.legendItems.map((i) => i.text)")
    assert legend == ["distillation loss", "distillation loss (smoothed)", "soft part: KL·T² (smoothed)",
                      "hard part: cross-entropy (smoothed)"]  # fmt: skip
    assert "α = 0.7" in page.locator("#distill-card").inner_text()
    shoot(page, "job-distill")


def test_a_running_jobs_log_and_points_arrive_live_and_its_end_shows_how_long_it_took(
    signed_in, site, browser_user, dataset
):
    page = signed_in
    started = timezone.now() - timedelta(seconds=60)
    job = Job.objects.create(owner=browser_user, kind="finetune", dataset=dataset, params={}, status="running",
                             attempts=1, started_at=started)  # fmt: skip
    job.run_attempt = 1
    log = logging.getLogger("jobs.training.runner")
    log.setLevel(logging.INFO)  # as the worker logs (celery --loglevel INFO)

    def log_line(level: int, message: str):
        def work():
            with joblog.captured(job, lifecycle.fence):
                log.log(level, message, job.pk)

        return work

    def report_step_1():
        lifecycle.record_metrics(
            job, [MetricPoint(job=job, seq=1, step=1, kind="train", values=train_values(1, started))]
        )

    try:
        as_worker(log_line(logging.INFO, "job %s: tokenising"))
        page.goto(f"{site.url}/jobs/{job.pk}/")
        page.locator('#job-log .log-line[data-seq="1"]').wait_for()  # from the history on connect
        page.wait_for_function("() => document.getElementById('live-indicator').textContent === 'live'")
        as_worker(log_line(logging.WARNING, "job %s: a warning, live"))
        as_worker(report_step_1)
    finally:
        log.setLevel(logging.NOTSET)
    page.locator('#job-log .log-line[data-seq="2"]').wait_for()
    lines = page.locator("#job-log .log-line").all_inner_texts()
    assert [re.sub(r"\s+", " ", line).split(" ", 1)[1] for line in lines] == [
        f"INFO job {job.pk}: tokenising", f"WARNING job {job.pk}: a warning, live",
    ]  # fmt: skip
    page.wait_for_function("() => window.Chart.getChart('chart-loss').data.datasets[0].data.length === 1")

    # It ends 47 s after it started: the page says so without a reload.
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=47))
    job.refresh_from_db()
    job.run_attempt = 1
    as_worker(lambda: lifecycle.finish_job(job, Job.Status.SUCCEEDED))
    page.locator("#job-duration-item:not([hidden])").wait_for()
    assert page.locator("#job-duration").inner_text() in ("47 s", "48 s")
    shoot(page, "job-live-log")


def test_a_file_classification_shows_its_label_counts_and_first_rows_when_it_ends(
    signed_in, site, browser_user, dataset
):
    page = signed_in
    from jobs.models import ModelRecord

    model = ModelRecord.objects.create(
        owner=browser_user, name="m", kind="finetune", params={}, metrics={}, label_names=["neg", "pos"],
        num_parameters=1, size_bytes=1,
    )  # fmt: skip
    job = Job.objects.create(owner=browser_user, kind="classify", model=model, status="running", attempts=1,
                             params={"rows": 3, "text_column": "text", "format": "csv"}, input_filename="t.csv",
                             started_at=timezone.now())  # fmt: skip
    page.goto(f"{site.url}/jobs/{job.pk}/")
    page.wait_for_function("() => document.getElementById('live-indicator').textContent === 'live'")
    assert page.locator("#label-counts").count() == 0
    summary = {
        "label_counts": {"neg": 2, "pos": 1},
        "first_rows": [{"row": i, "id": None, "label": lab, "probability": 0.9, "text": f"text {i}"}
                       for i, lab in ((1, "neg"), (2, "pos"), (3, "neg"))],
    }  # fmt: skip
    Job.objects.filter(pk=job.pk).update(output_file="classify/output/x/t-classified.csv", output_summary=summary)
    job.refresh_from_db()
    job.run_attempt = 1
    as_worker(lambda: lifecycle.finish_job(job, Job.Status.SUCCEEDED))
    page.locator("#label-counts").wait_for()
    assert page.locator("#label-counts .value").all_inner_texts() == ["2 · 67%", "1 · 33%"]
    assert page.locator("#first-rows tbody tr").count() == 3
    assert page.locator("#output-link").is_visible()
    shoot(page, "job-classify-result")


def test_compare_draws_every_model_by_its_cross_entropy_a_distillation_by_its_hard_part(
    signed_in, site, browser_user, dataset
):
    page = signed_in
    from jobs.models import ModelRecord

    def record(name, teacher=None, values=None):
        model = ModelRecord.objects.create(
            owner=browser_user, name=name, kind="distill" if teacher else "finetune", teacher=teacher, params={},
            metrics={"test/accuracy": 0.9}, label_names=["neg", "pos"], num_parameters=1, size_bytes=1,
        )  # fmt: skip
        job = Job.objects.create(owner=browser_user, kind=model.kind, dataset=dataset, params={}, status="succeeded",
                                 result_model=model)  # fmt: skip
        MetricPoint.objects.bulk_create(
            [MetricPoint(job=job, seq=s, step=s, kind="train", values=values(s)) for s in range(1, 4)]
        )
        return model

    teacher = record("teacher", values=lambda s: {"train/loss": 0.6, "train/accuracy": 0.7})
    student = record("student", teacher, lambda s: {
        "train/loss": 0.9, "train/soft_loss": 1.4, "train/hard_loss": 0.4, "train/accuracy": 0.7,
    })  # fmt: skip
    page.goto(f"{site.url}/compare/?models={teacher.pk},{student.pk}")
    page.wait_for_function("() => window.Chart && window.Chart.getChart('chart-loss')")
    sets = chart(page, "chart-loss", "c.data.datasets.map((d) => [d.label, d.data.map((p) => p.y)])")
    assert sets == [  # smoothed, of constant values
        ["teacher", [pytest.approx(0.6)] * 3], ["student (cross-entropy part)", [pytest.approx(0.4)] * 3]
    ]  # fmt: skip
    assert chart(page, "chart-loss", "c.options.scales.y.title.text") == "cross-entropy"
