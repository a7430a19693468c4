"""In a real browser: a confusion cell of the model page opens exactly its test rows, ordered by confidence and
downloadable as CSV; the disagreement page filters by a cell of the a x b table, sorts, and explains a row by both
models side by side."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import services as dataset_services
from jobs.models import RowPrediction
from tests.browser.conftest import shoot
from tests.conftest import csv_bytes
from tests.registry.test_row_browsers import _record, _rows, trained  # noqa: F401  (trained: a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


@pytest.fixture
def pair(browser_user, trained):  # noqa: F811
    dataset = dataset_services.create_dataset(browser_user, "reviews", SimpleUploadedFile("r.csv", csv_bytes(_rows())))
    return _record(browser_user, dataset, *trained["strong"]), _record(browser_user, dataset, *trained["weak"])


def test_a_confusion_cell_opens_exactly_its_rows_by_confidence_and_downloads_them(signed_in, site, pair):
    page = signed_in
    strong, _ = pair
    names = strong.label_names
    page.goto(f"{site.url}/models/{strong.pk}/")
    link = page.locator(f'#confusion a[data-true="{names[1]}"][data-predicted="{names[0]}"]')
    expected = RowPrediction.objects.filter(model=strong, label=1, predicted=0).order_by("-confidence", "row")
    assert link.inner_text() == str(expected.count())
    link.click()
    page.locator("#error-rows").wait_for()
    shown = page.locator("#error-rows tbody tr[data-row]").evaluate_all("rs => rs.map(r => Number(r.dataset.row))")
    assert shown == list(expected.values_list("row", flat=True))[:25]
    page.locator("#order-toggle").click()
    page.locator("#rows-order", has_text="least confident first").wait_for()
    unsure = page.locator("#error-rows tbody tr[data-row]").evaluate_all("rs => rs.map(r => Number(r.dataset.row))")
    assert unsure == list(expected.order_by("confidence", "row").values_list("row", flat=True))[:25]
    shoot(page, "error-browser")

    with page.expect_download() as info:
        page.locator("#errors-csv").click()
    table = list(csv.reader(io.StringIO(info.value.path().read_text())))
    least_first = list(expected.order_by("confidence", "row").values_list("row", flat=True))
    assert [int(line[0]) for line in table[1:]] == least_first
    assert all(line[1] == names[1] and line[2] == names[0] for line in table[1:])
    assert not any(line[-1].startswith("=") for line in table[1:])


def test_disagreements_filter_by_cell_sort_and_explain_both_side_by_side(signed_in, site, pair):
    page = signed_in
    strong, weak = pair
    page.goto(f"{site.url}/models/{strong.pk}/")
    page.get_by_label("Where it disagrees with").select_option(str(weak.pk))
    page.locator("#disagreements-button").click()
    page.locator("#pair-table").wait_for()
    a = dict(RowPrediction.objects.filter(model=strong).values_list("row", "predicted"))
    b = dict(RowPrediction.objects.filter(model=weak).values_list("row", "predicted"))
    b_conf = dict(RowPrediction.objects.filter(model=weak).values_list("row", "confidence"))
    cell = next((i, j) for i in range(2) for j in range(2) if i != j and any(a[r] == i and b[r] == j for r in a))
    la, lb = strong.label_names[cell[0]], weak.label_names[cell[1]]
    rows = [r for r in a if a[r] == cell[0] and b[r] == cell[1]]
    page.locator(f'#pair-table td[data-a="{la}"][data-b="{lb}"] a').click()
    page.locator("#all-cells").wait_for()
    page.locator("#sort-b-unsure").click()
    page.locator('#sort-b-unsure[aria-current="true"]').wait_for()
    shown = page.locator("#pair-rows tbody tr[data-row]").evaluate_all("rs => rs.map(r => Number(r.dataset.row))")
    assert shown == sorted(rows, key=lambda r: (b_conf[r], r))[:25]

    page.locator("#pair-rows button.explain-both").first.click()
    page.locator("#explain-a[data-explained]").wait_for()
    page.locator("#explain-b[data-explained]").wait_for()
    assert page.locator("#explain-a").get_attribute("data-explained") == la
    assert page.locator("#explain-b").get_attribute("data-explained") == lb
    assert page.locator("#explain-a .xp-token").count() > 0 and page.locator("#explain-b .xp-token").count() > 0
    shoot(page, "disagreements")
