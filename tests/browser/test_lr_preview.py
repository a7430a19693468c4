"""The launch form draws the learning-rate schedule its values will train with, before launch: the steps from the
chosen dataset's size, batch size, epochs and warm-up, for both schedules, one line per learning rate of a sweep;
a wrong value asks nothing of the server and says which field to fix."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from jobs.datasets import services as dataset_services
from mlcore.config import ConfigError, TrainConfig
from mlcore.schedule import preview

from .conftest import shoot

pytestmark = pytest.mark.django_db(transaction=True)

LINES = """() => Chart.getChart(document.getElementById("chart-lr-preview")).data.datasets.map(
    d => ({label: d.label, points: d.data.map(p => [p.x, p.y])}))"""


@pytest.fixture
def dataset(browser_user, sentiment_csv):
    return dataset_services.create_dataset(browser_user, "reviews", sentiment_csv)  # 160 rows


def _fill(form, values: dict) -> None:
    for label, value in values.items():
        control = form.get_by_label(label, exact=True)
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def test_the_schedule_is_drawn_from_the_datasets_size_for_both_schedules_and_each_swept_rate(dataset, signed_in):
    page = signed_in
    form = page.locator("#job-form")
    box, summary = page.locator("#lr-preview"), page.locator("#lr-preview-summary")
    expect(summary).to_have_text("Choose a dataset to see the learning rate of every step.")
    expect(page.locator("#lr-preview-chart")).to_be_hidden()  # no empty chart before there is a schedule
    _fill(form, {"Dataset": str(dataset.pk), "Batch size": "16", "Epochs": "3", "Scheduler": "linear",
                 "Warmup ratio": "0.25", "Learning rate": "1e-3, 3e-3"})  # fmt: skip
    # 160 rows: 128 train (10% validation and 10% test held out), 8 batches an epoch, 24 steps, 6 warming up
    expect(summary).to_have_text("128 training rows: 8 steps an epoch, 24 steps in all, the first 6 warming up.")
    expect(box).to_have_attribute("data-lines", "2")
    expect(page.locator("#lr-preview-chart")).to_be_visible()
    lines = page.evaluate(LINES)
    plan = preview(TrainConfig(learning_rate=1e-3, batch_size=16, epochs=3, scheduler="linear", warmup_ratio=0.25), 160)
    assert [line["label"] for line in lines] == ["lr 1e-3", "lr 3e-3"]
    assert [p[0] for p in lines[0]["points"]] == [s for s, _ in plan.points] == list(range(1, 25))
    assert [p[1] for p in lines[0]["points"]] == pytest.approx([lr for _, lr in plan.points], rel=1e-9)
    assert [p[1] for p in lines[1]["points"]] == pytest.approx([3 * lr for _, lr in plan.points], rel=1e-9)
    assert lines[1]["points"][6][1] == pytest.approx(3e-3) and lines[1]["points"][0][1] == 0  # the peak at step 7
    shoot(page, "lr-preview")

    # The exponential schedule has no warm-up: said in mlcore.config's words, without asking the server.
    _fill(form, {"Scheduler": "exponential"})
    with pytest.raises(ConfigError) as refused:
        TrainConfig(scheduler="exponential", warmup_ratio=0.25)
    expect(summary).to_have_text(str(refused.value))
    expect(box).to_have_attribute("data-lines", "0")
    # Without it: times 0.96 every 10 steps; two batch sizes draw a set of lines each.
    _fill(form, {"Warmup ratio": "0", "Learning rate": "2e-5", "Batch size": "16, 32"})
    expect(summary).to_contain_text("batch_size 32: 128 training rows: 4 steps an epoch, 12 steps in all.")
    expect(box).to_have_attribute("data-warmup-steps", "0")
    lines = page.evaluate(LINES)
    assert [line["label"] for line in lines] == ["lr 2e-5 (batch_size 16)", "lr 2e-5 (batch_size 32)"]
    assert [p[1] for p in lines[0]["points"]] == pytest.approx([2e-5] * 10 + [2e-5 * 0.96] * 10 + [2e-5 * 0.96**2] * 4)
    assert len(lines[1]["points"]) == 12

    # A wrong value: nothing is asked (a 400 would fail this test), the field is named, no line is left standing.
    _fill(form, {"Epochs": "0"})
    expect(summary).to_have_text("Fix epochs above to see the schedule.")
    expect(box).to_have_attribute("data-lines", "0")
    expect(page.locator("#lr-preview-chart")).to_be_hidden()
    _fill(form, {"Epochs": "1", "Batch size": "64"})
    expect(summary).to_have_text("128 training rows: 2 steps an epoch, 2 steps in all.")

    # A test dataset of its own: no test rows are split off this one.
    form.get_by_label("Test on", exact=True).select_option(str(dataset.pk))
    expect(summary).to_have_text("144 training rows: 3 steps an epoch, 3 steps in all.")
