"""In a real browser: a dataset's quality report with its examples and a finding's CSV, and a model's suspected
label errors linked from the dataset they were found in."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import quality
from jobs.datasets import services as dataset_services
from jobs.models import DatasetQuality, LabelIssues
from jobs.registry import services as registry
from jobs.training import dispatch
from tests.browser.conftest import shoot
from tests.browser.test_journey import downloaded
from tests.conftest import csv_bytes
from tests.mlcore.test_quality_report import ROWS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


def test_the_quality_report_shows_each_finding_and_downloads_its_rows_and_links_the_label_errors(
    signed_in, site, browser_user, tiny_model_dir, monkeypatch
):
    monkeypatch.setattr(dispatch, "dataset_quality", lambda *args: None)  # a worker of the session would race this
    dataset = dataset_services.create_dataset(browser_user, "messy", SimpleUploadedFile("m.csv", csv_bytes(ROWS)))
    status = quality.compute_report(dataset.pk)  # as the worker does (tests/datasets covers the worker)
    assert status == "ready", DatasetQuality.objects.get(dataset=dataset).error
    record = registry.import_model(browser_user, tiny_model_dir, name="reviewer")
    LabelIssues.objects.create(
        model=record, dataset=dataset,
        summary={"method": "confident learning (cleanlab)", "rows": 13, "folds": 5, "count": 1,
                 "thresholds": {"neg": 0.71, "pos": 0.69}, "oof_accuracy": 0.85},
        suspects=[{"row": 6, "text": ROWS[5][0], "given": "neg", "suggested": "pos", "confidence": 0.12,
                   "suggested_probability": 0.88}],
    )  # fmt: skip
    page = signed_in
    page.goto(f"{site.url}/datasets/{dataset.pk}/")
    report = page.locator("#data-quality")
    assert report.get_attribute("data-status") == "ready"
    assert page.locator("#finding-exact_duplicates td.num").inner_text() == "2"
    assert "rows 5, 6 (pos / neg)" in page.locator("#finding-conflicting_labels").inner_text()
    assert "1.17 : 1" in page.locator("#quality-imbalance").inner_text()
    body = downloaded(page, page.locator("#csv-markup")).decode()
    assert [line.split(",")[0] for line in body.splitlines()] == ["row", "1", "8", "9"]
    report.scroll_into_view_if_needed()
    shoot(page, "data-quality")

    page.locator("#label-issue-links a").click()
    page.wait_for_url(f"**/models/{record.pk}/#label-issues")
    rows = page.locator("#label-issue-rows tbody tr")
    assert rows.count() == 1 and rows.first.locator("td").first.inner_text() == "6"
    page.locator("#label-issues").scroll_into_view_if_needed()
    shoot(page, "label-errors")
