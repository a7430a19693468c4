"""A model's test accuracy comes with its test set's size, a 95% interval and the decimals that size supports,
and a warning when it does not beat always answering the most common label: on Compare, the model page and the
classify page."""

from __future__ import annotations

import pytest

from jobs.models import ModelRecord
from jobs.registry.quality import ABOVE, BELOW, UNCLEAR
from jobs.registry.quality import test_summary as summary_of

pytestmark = pytest.mark.django_db


def _metrics(accuracy: float, supports: dict[str, int]) -> dict:
    per_class = {label: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": n} for label, n in supports.items()}
    report = {"accuracy": accuracy, "per_class": per_class, "macro_f1": 0.5}
    return {"test/accuracy": accuracy, "test/report": report, "val/accuracy": 0.8}


def _record(owner, name, accuracy, supports, labels=("negative", "positive")):
    return ModelRecord.objects.create(
        owner=owner, name=name, kind="finetune", base_model="all-MiniLM-L6-v2", params={},
        metrics=_metrics(accuracy, supports), label_names=list(labels), num_parameters=1, size_bytes=1,
    )  # fmt: skip


def test_forty_test_rows_show_two_decimals_with_their_interval():
    summary = summary_of(_metrics(0.875, {"negative": 20, "positive": 20}))
    assert summary["rows"] == 40 and summary["shown"] == "0.88" and summary["interval"] == "0.74–0.95"
    assert summary["verdict"] == ABOVE and summary["warning"] == ""


def test_a_model_at_the_majority_baseline_is_warned_about():
    summary = summary_of(_metrics(0.75, {"negative": 30, "positive": 10}))
    assert summary["verdict"] == BELOW and summary["baseline"] == 0.75 and summary["baseline_label"] == "negative"
    assert summary["warning"].startswith("At or below the majority-class baseline: always answering “negative”")


def test_a_model_whose_interval_holds_the_baseline_is_not_clearly_better():
    summary = summary_of(_metrics(0.85, {"negative": 30, "positive": 10}))  # 0.85 on 40: 0.71..0.93 holds 0.75
    assert summary["verdict"] == UNCLEAR and "Not clearly better" in summary["warning"]


def test_without_a_report_the_accuracy_is_shown_and_no_size_is_claimed():
    summary = summary_of({"test/accuracy": 0.9})
    assert summary["rows"] is None and summary["interval"] == "" and summary["warning"] == ""
    assert summary_of({}) is None and summary_of(None) is None


def test_compare_shows_size_interval_and_the_baseline_warning(logged_in, api, user):
    good = _record(user, "good", 0.95, {"negative": 500, "positive": 500})
    flat = _record(user, "flat", 0.70, {"negative": 28, "positive": 12})
    html = logged_in.get(f"/compare/?models={good.pk},{flat.pk}").content.decode()
    rows = html.split('id="compare-table"')[1].split("</table>")[0].split('data-model-id="')
    assert ">0.950<br>" in rows[1] and "0.935–0.962 · 1000 texts" in rows[1]  # 3 decimals on 1,000 rows
    assert "⚠</span> 0.70<br>" in rows[2] and "0.55–0.82 · 40 texts" in rows[2]
    assert f'data-warning-for="{flat.pk}"' in html and f'data-warning-for="{good.pk}"' not in html
    body = api.get(f"/api/models/compare/?ids={good.pk},{flat.pk}").json()
    assert body["models"][1]["test_rows"] == 40 and body["models"][1]["majority_baseline"] == 0.7
    csv_head = api.get(f"/api/models/compare/?ids={good.pk}&format=csv").content.decode().splitlines()[0]
    assert "test_rows,test_accuracy_ci_low,test_accuracy_ci_high,majority_baseline" in csv_head


def test_the_model_page_shows_size_interval_and_warning(logged_in, user):
    flat = _record(user, "flat", 0.70, {"negative": 28, "positive": 12})
    html = logged_in.get(f"/models/{flat.pk}/").content.decode()
    assert '<dd id="test-accuracy">0.70 <span class="muted small" id="test-interval">' in html
    assert "95% interval 0.55–0.82 · 40 test texts" in html
    assert 'id="baseline-warning"' in html and "always answering “negative” scores 0.70" in html
    assert 'data-metric="test/accuracy" data-decimals="2"' in html


def test_the_classify_page_warns_when_the_promoted_model_is_at_the_baseline(logged_in, user):
    _record(user, "flat", 0.70, {"negative": 28, "positive": 12})
    ModelRecord.objects.filter(name="flat").update(is_promoted=True)
    html = logged_in.get("/classify/").content.decode()
    assert 'id="model-test-accuracy">test accuracy 0.70 (95% interval 0.55–0.82, 40 texts)' in html
    assert 'id="baseline-warning"' in html


# ---------------------------------------------------------------- the study's rows


def test_the_study_rows_show_only_beside_binary_sentiment_models(logged_in, api, user):
    sentiment = _record(user, "sentiment", 0.9, {"negative": 50, "positive": 50})
    imdb_folders = _record(user, "folders", 0.9, {"neg": 50, "pos": 50}, labels=("neg", "pos"))
    topics = _record(user, "topics", 0.9, {"a": 50, "b": 50, "c": 50}, labels=("sport", "politics", "tech"))

    both = api.get(f"/api/models/compare/?ids={sentiment.pk},{imdb_folders.pk}").json()
    assert [r["name"] for r in both["study"]] == ["IMDB study: BERT", "IMDB study: DistilBERT"]
    assert api.get(f"/api/models/compare/?ids={sentiment.pk},{topics.pk}").json()["study"] == []
    assert "IMDB study: BERT" not in logged_in.get(f"/compare/?models={topics.pk}").content.decode()
    assert "IMDB study: BERT" not in logged_in.get(f"/models/{topics.pk}/").content.decode()
    assert logged_in.get(f"/models/{sentiment.pk}/").content.decode().count('class="muted study-row"') == 2
    png = api.get(f"/api/models/compare/?ids={topics.pk}&format=png")  # no study lines to draw: still a figure
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
