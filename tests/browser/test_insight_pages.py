"""Teacher-student agreement and calibration in a real browser: a distillation's job page charts the agreement per
batch and at validation on a chart of its own, beside the loss parts; a model's page draws its reliability diagram
(accuracy per confidence bin, mean confidence, the diagonal) from the stored bins; Compare shows ECE, T and
agreement."""

from __future__ import annotations

import pytest
import torch

from jobs.models import Job, MetricPoint, ModelRecord
from mlcore.calibration import calibration_metrics
from mlcore.config import DistillConfig, config_defaults
from tests.browser.conftest import shoot
from tests.browser.test_job_page import chart, data_of, dataset, open_job  # noqa: F401  (dataset: a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pair(browser_user, dataset):  # noqa: F811
    teacher = ModelRecord.objects.create(
        owner=browser_user, name="teacher", kind="finetune", params={}, metrics={}, label_names=["neg", "pos"],
        num_parameters=4, size_bytes=4, dataset=dataset,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 2, generator=generator, dtype=torch.float64) * 4
    labels = torch.multinomial((logits / 4).softmax(dim=-1), 1, generator=generator).squeeze(1)
    metrics = {"test/accuracy": 0.8, "val/agreement": 0.9375, "test/agreement": 0.925}
    student = ModelRecord.objects.create(
        owner=browser_user, name="student", kind="distill", teacher=teacher, params={"calibrate": True},
        metrics=metrics | calibration_metrics(logits, labels, 3.6), label_names=["neg", "pos"], num_parameters=2,
        size_bytes=2, dataset=dataset, temperature=3.6,
    )  # fmt: skip
    return teacher, student


def test_a_distillations_agreement_with_its_teacher_has_a_chart_of_its_own(signed_in, site, pair, dataset):  # noqa: F811
    page = signed_in
    teacher, _ = pair
    job = Job.objects.create(
        owner=teacher.owner, kind="distill", dataset=dataset, teacher=teacher, status="succeeded",
        params=config_defaults(DistillConfig),
    )  # fmt: skip
    shares = [0.5, 0.75, 0.875, 1.0]
    MetricPoint.objects.bulk_create(
        [MetricPoint(job=job, seq=i + 1, step=i + 1, kind="train",
                     values={"train/loss": 0.5, "train/soft_loss": 0.4, "train/hard_loss": 0.6, "train/accuracy": 0.7,
                             "train/agreement": share, "lr": 2e-5, "epoch": (i + 1) / 4})
         for i, share in enumerate(shares)]
        + [MetricPoint(job=job, seq=5, step=4, kind="val",
                       values={"val/loss": 0.4, "val/accuracy": 0.8, "val/agreement": 0.9375})]
    )  # fmt: skip
    open_job(page, site, job)
    assert [p["y"] for p in data_of(page, "chart-agreement", "train agreement")] == shares
    assert [(p["step"], p["y"]) for p in data_of(page, "chart-agreement", "val agreement")] == [(4, 0.9375)]
    legend = chart(page, "chart-agreement", "c.legend.legendItems.map((i) => i.text)")
    assert legend == ["train agreement", "train agreement (smoothed)", "val agreement"]
    # Beside the loss parts' chart.
    cards = page.locator(".grid-2 > section.card").evaluate_all("(els) => els.map((e) => e.id)")
    assert cards.index("agreement-card") == cards.index("distill-card") + 1
    page.locator("#agreement-card").scroll_into_view_if_needed()
    shoot(page, "job-agreement")


def test_the_model_page_draws_the_reliability_diagram_from_the_stored_bins(signed_in, site, pair):
    page = signed_in
    _, student = pair
    page.goto(f"{site.url}/models/{student.pk}/")
    page.wait_for_function("() => window.Chart && window.Chart.getChart('chart-reliability')")
    bins = student.metrics["reliability"]
    datasets = chart(page, "chart-reliability", "c.data.datasets.map((d) => [d.label, d.data])")
    by_label = dict(datasets)
    assert by_label["accuracy"] == [b["accuracy"] if b["count"] else None for b in bins]
    assert by_label["mean confidence"] == [b["confidence"] if b["count"] else None for b in bins]
    assert by_label["perfect calibration"] == pytest.approx([(b["low"] + b["high"]) / 2 for b in bins])
    assert page.locator("#ece").inner_text() == f"{student.metrics['ece']:.4f}"
    assert page.locator("#ece-uncalibrated").inner_text() == f"{student.metrics['ece_uncalibrated']:.4f}"
    assert page.locator("#temperature").inner_text().startswith("3.600")
    assert page.locator("#test-agreement").inner_text() == "0.9250"
    page.locator("#calibration").scroll_into_view_if_needed()
    shoot(page, "model-calibration")


def test_compare_shows_calibration_and_agreement_for_each_model(signed_in, site, pair):
    page = signed_in
    teacher, student = pair
    page.goto(f"{site.url}/compare/?models={teacher.pk},{student.pk}")
    row = page.locator(f'#trust-table tr[data-model-id="{student.pk}"]')
    assert row.locator('[data-key="temperature"]').inner_text() == "3.600"
    assert row.locator('[data-key="test_agreement"]').inner_text() == "0.9250"
    assert row.locator('[data-key="ece"]').inner_text() == f"{student.metrics['ece']:.4f}"
    page.locator("#trust").scroll_into_view_if_needed()
    shoot(page, "compare-calibration")
