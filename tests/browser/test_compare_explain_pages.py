"""In a real browser: Compare's re-measure, the explanation's label choice, palette and heatmap width, and the
dataset histogram's cut at max_length."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import services as dataset_services
from jobs.registry import services as registry
from tests.browser.conftest import shoot
from tests.conftest import csv_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


@pytest.fixture
def two_models(browser_user, tiny_model_dir):
    first = registry.import_model(browser_user, tiny_model_dir, name="first")
    second = registry.import_model(browser_user, tiny_model_dir, name="second")
    registry.promote(second)
    return first, second


def _signed(title: str) -> float:
    return float(re.search(r": ([+-]?\d+\.\d+)", title)[1])


def test_explain_a_chosen_label_in_a_class_neutral_palette_with_a_heatmap_as_wide_as_its_card(
    signed_in, site, two_models
):
    page = signed_in
    page.goto(site.url + "/classify/")
    page.get_by_label("Text", exact=True).fill("a great, good film with a boring end")
    page.get_by_role("button", name="Classify", exact=True).click()
    predicted = page.locator(".prediction-label").inner_text()
    page.locator("#explain-button").click()
    legend = page.locator("#explanation .xp-legend[data-explained]")
    legend.wait_for()
    assert legend.get_attribute("data-explained") == predicted
    assert f"pushes towards “{predicted}”" in legend.inner_text()
    # Blue towards, orange away: no green/red "good"/"bad" reading.
    colours = page.evaluate("""() => ["xp-pos", "xp-neg"].map((c) =>
        getComputedStyle(document.querySelector("#explanation .xp-swatch." + c)).backgroundColor)""")
    assert colours == ["rgb(43, 131, 186)", "rgb(230, 97, 1)"]
    before = [_signed(t) for t in page.locator("#explanation .xp-token").evaluate_all("els => els.map(e => e.title)")]

    select = page.get_by_label("Explain the label")
    other = next(o for o in select.locator("option").evaluate_all("os => os.map(o => o.value)") if o != predicted)
    select.select_option(other)
    page.locator(f'#explanation .xp-legend[data-explained="{other}"]').wait_for()
    after = [_signed(t) for t in page.locator("#explanation .xp-token").evaluate_all("els => els.map(e => e.title)")]
    assert after == pytest.approx([-v for v in before], abs=2e-3)  # two labels: the mirror image
    assert page.get_by_label("Explain the label").input_value() == other

    # The heatmap's grid takes the card's width: no empty band beside it, no sideways scroll.
    room, drawn = page.evaluate("""() => {
        const box = document.querySelector("#explanation .xp-heatmap-scroll");
        const canvas = box.querySelector("canvas");
        const style = getComputedStyle(box);
        return [box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
                canvas.getBoundingClientRect().width];
    }""")
    assert room - 24 <= drawn <= room
    shoot(page, "classify-explain-chosen-label")


def test_compare_re_measures_every_model_here_and_says_which_figures_the_ratio_uses(signed_in, site, two_models):
    page = signed_in
    first, second = two_models
    page.goto(f"{site.url}/compare/?models={first.pk},{second.pk}")
    assert page.locator("#speed-basis").get_attribute("data-basis") == "worker"
    page.get_by_role("button", name=re.compile("Re-measure")).click()
    page.locator('#speed-basis[data-basis="serving"]').wait_for(timeout=120_000)
    assert "each model at the precision it serves" in page.locator("#speed-basis").inner_text()
    row = page.locator(f'#speed-table tr[data-model-id="{second.pk}"]')
    assert row.locator('[data-key="serving_latency_ms_b1_fp32"]').inner_text().endswith(" ms")
    assert row.locator('[data-key="cpu_speedup_fp32_vs_first"]').inner_text().endswith("x")
    assert page.locator('#architecture tr[data-arch="layers"] td').count() == 2
    shoot(page, "compare-re-measured")


def test_the_histogram_draws_the_cut_at_max_length(signed_in, site, browser_user):
    rows = [(" ".join(["great"] * n) + " film", "positive" if n % 2 else "negative") for n in range(3, 61, 3)]
    dataset = dataset_services.create_dataset(browser_user, "lengths", SimpleUploadedFile("l.csv", csv_bytes(rows)))
    page = signed_in
    page.goto(f"{site.url}/datasets/{dataset.pk}/?max_length=32")
    cut = page.locator("#token-histogram .histogram-col.cut-start")
    cut.wait_for(timeout=120_000)
    assert cut.get_attribute("data-start") == "32"
    assert cut.locator(".histogram-cut-label").inner_text() == "max_length 32"
    assert cut.locator(".histogram-plot").evaluate("e => getComputedStyle(e).borderLeftStyle") == "dashed"
    counts = page.locator("#token-histogram .histogram-count").all_inner_texts()
    assert sum(map(int, counts)) == len(rows)
    shoot(page, "dataset-histogram-cut")
