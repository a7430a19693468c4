"""The runs page in a real browser: the column chooser hides and shows columns at once, writes them into the URL
and every link, and is remembered by the browser; a heading sorts; the condition builder writes a condition the
server applies; ticking runs opens Compare with their models (at most 8); the CSV is the view on screen."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from jobs.models import Dataset, Job, ModelRecord
from mlcore.config import TrainConfig, config_defaults
from tests.browser.conftest import shoot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


@pytest.fixture
def nine(browser_user):
    """Nine succeeded fine-tunes, run-0 to run-8, test accuracy 0.70 to 0.86 and learning rate 1e-5 to 9e-5."""
    data = Dataset.objects.create(
        owner=browser_user, name="reviews", file="datasets/reviews.csv", original_filename="reviews.csv",
        format="csv", text_column="text", label_column="label", num_rows=100, labels=["neg", "pos"],
        label_counts={"neg": 50, "pos": 50}, size_bytes=1000,
    )  # fmt: skip
    made = []
    for i in range(9):
        model = ModelRecord.objects.create(
            owner=browser_user, name=f"run-{i}", kind="finetune", params={}, label_names=["neg", "pos"],
            metrics={"test/accuracy": 0.70 + i / 50, "val/accuracy": 0.7}, num_parameters=1, size_bytes=1,
        )  # fmt: skip
        made.append(
            Job.objects.create(
                owner=browser_user,
                kind="finetune",
                dataset=data,
                status="succeeded",
                base_model="tiny",
                params=config_defaults(TrainConfig) | {"learning_rate": (i + 1) * 1e-5},
                result_model=model,
            )  # fmt: skip
        )
    return made


def visible_columns(page) -> list[str]:
    return page.eval_on_selector_all(
        "#runs-table thead th[data-col]:not([hidden])", "ths => ths.map(th => th.dataset.col)"
    )


def names(page) -> list[str]:
    return page.eval_on_selector_all(
        "#runs-table tbody td[data-col='name']", "tds => tds.map(td => td.textContent.trim())"
    )


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_columns_sort_conditions_compare_and_csv_in_a_browser(signed_in, site, nine):
    page = signed_in
    page.get_by_role("link", name="Runs", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/$"))
    assert "alpha" not in visible_columns(page) and "valid_accuracy" in visible_columns(page)
    shoot(page, "runs")

    # The chooser: at once, into the URL and every link, remembered by the browser.
    page.locator("#column-chooser summary").click()
    page.get_by_label("Valid acc").uncheck()
    page.get_by_label("weight_decay").check()
    assert "valid_accuracy" not in visible_columns(page) and "weight_decay" in visible_columns(page)
    chosen = query(page.url)["columns"][0].split(",")
    assert "weight_decay" in chosen and "valid_accuracy" not in chosen
    assert "weight_decay" in query(page.locator("#runs-csv").get_attribute("href"))["columns"][0]
    page.keyboard.press("Escape")
    page.goto(site.url + "/runs/")
    assert set(visible_columns(page)) == set(chosen) and query(page.url)["columns"][0].split(",") == chosen

    # A heading sorts (ascending, then descending), keeping the columns.
    page.locator("#runs-table th[data-col='test_accuracy'] a").click()
    page.wait_for_url(re.compile(r"sort=test_accuracy"))
    assert names(page)[:2] == ["run-0", "run-1"] and "weight_decay" in visible_columns(page)
    page.locator("#runs-table th[data-col='test_accuracy'] a").click()
    page.wait_for_url(re.compile(r"sort=-test_accuracy"))
    assert names(page)[:2] == ["run-8", "run-7"]

    # The condition builder writes what the server applies.
    page.get_by_label("Column", exact=True).select_option("learning_rate")
    page.get_by_label("Operator").select_option(">=")
    page.get_by_label("Value", exact=True).fill("5e-5")
    page.get_by_role("button", name="Add condition").click()
    assert page.get_by_label("Where", exact=True).input_value() == "learning_rate >= 5e-5"
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"where=learning_rate"))
    assert names(page) == ["run-8", "run-7", "run-6", "run-5", "run-4"]  # still sorted, columns kept
    assert "weight_decay" in visible_columns(page)

    # The CSV is this view.
    with page.expect_download() as download:
        page.locator("#runs-csv").click()
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert "weight_decay" in rows[0] and "valid_accuracy" not in rows[0]
    assert [row[rows[0].index("name")] for row in rows[1:]] == ["run-8", "run-7", "run-6", "run-5", "run-4"]

    # A page size applies as it is chosen.
    page.get_by_label("Runs per page").select_option("25")
    page.wait_for_url(re.compile(r"per_page=25"))
    assert "where" in query(page.url) and len(names(page)) == 5

    # Ticks: at most 8, then Compare with them.
    page.goto(site.url + "/runs/?sort=name")
    button = page.locator("#compare-ticked")
    assert button.is_disabled()
    ticks = page.locator("#runs-table input[name='models']")
    for i in range(8):
        ticks.nth(i).check()
    assert button.inner_text() == "Compare ticked (8)" and ticks.nth(8).is_disabled()
    ticks.nth(7).uncheck()
    assert ticks.nth(8).is_enabled()
    ticks.nth(7).check()
    button.click()
    page.wait_for_url(re.compile(r"/compare/\?"))
    expected = [str(Job.objects.get(result_model__name=f"run-{i}").result_model_id) for i in range(8)]
    assert query(page.url)["models"] == expected
    assert page.locator("#compare-table tbody tr[data-model-id]").count() == 8
