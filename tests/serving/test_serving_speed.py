"""Compare's re-measure: every compared model timed in the web process, the same way (both precisions, the same
texts, interleaved rounds), saved with how it was measured; the speed ratios then use those figures and say so."""

from __future__ import annotations

import json

import pytest

from jobs.models import ModelRecord
from jobs.registry import services as registry
from jobs.serving import speed

pytestmark = pytest.mark.django_db

URL = "/api/models/compare/measure/"


@pytest.fixture
def pair(user, trained_model, tiny_model_dir, settings):
    settings.DISTILLERY_SPEED_SECONDS = 0  # the minimum rounds only: the figures' values are not under test
    return trained_model, registry.import_model(user, tiny_model_dir, name="copy")


def test_every_model_is_measured_at_both_precisions_in_one_run_and_saved(api, pair):
    first, second = pair
    response = api.post(URL, {"ids": f"{first.pk},{second.pk}"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {str(first.pk), str(second.pk)}
    runs = {figures["run"] for figures in body.values()}
    assert len(runs) == 1  # measured together
    for record in (first, second):
        saved = ModelRecord.objects.get(pk=record.pk).serving_speed
        assert saved == body[str(record.pk)]
        assert saved["models"] == [first.pk, second.pk] and saved["rounds"] == speed.MIN_ROUNDS
        assert saved["texts"] == "the first 32 texts of reviews"  # the first model's dataset's, for both
        assert saved["where"].startswith("web process on ") and saved["measured_at"]
        for precision in ("fp32", "int8"):
            assert saved[precision]["latency_ms_b1"] > 0 and saved[precision]["samples_per_s_b32"] > 0


def test_the_ratios_use_the_serving_figures_once_measured_together_and_say_so(api, logged_in, pair):
    first, second = pair
    ids = f"{first.pk},{second.pk}"
    before = api.get("/api/models/compare/", {"ids": ids}).json()
    assert before["speed"]["basis"] == "worker" and "workers' figures" in before["speed"]["note"]

    api.post(URL, {"ids": ids}, format="json")
    after = api.get("/api/models/compare/", {"ids": ids}).json()

    assert after["speed"]["basis"] == "serving"
    a, b = after["models"]
    served = [row[f"serving_samples_per_s_b32_{row['serving_precision']}"] for row in (a, b)]
    assert b["cpu_speedup_vs_first"] == pytest.approx(served[1] / served[0])
    assert b["cpu_speedup_fp32_vs_first"] == pytest.approx(
        b["serving_samples_per_s_b32_fp32"] / a["serving_samples_per_s_b32_fp32"]
    )
    html = logged_in.get(f"/compare/?models={ids}").content.decode()
    assert 'id="speed-basis" data-basis="serving"' in html and "each model at the precision it serves" in html
    assert 'data-key="cpu_speedup_fp32_vs_first"' in html

    # Measured apart (one model again, alone), the figures no longer compare: back to the workers' figures.
    api.post(URL, {"ids": f"{second.pk}"}, format="json")
    assert api.get("/api/models/compare/", {"ids": ids}).json()["speed"]["basis"] == "worker"


def test_one_measurement_at_a_time_and_only_of_models_one_can_see(api, other_api, pair):
    first, _ = pair
    assert speed._running.acquire(blocking=False)
    try:
        busy = api.post(URL, {"ids": f"{first.pk}"}, format="json")
    finally:
        speed._running.release()
    assert busy.status_code == 409 and "already running" in busy.json()["detail"]
    assert other_api.post(URL, {"ids": f"{first.pk}"}, format="json").status_code == 404
    assert api.post(URL, {"ids": "x"}, format="json").status_code == 400


def test_what_differs_names_the_architecture(api, logged_in, pair, tiny_model_dir):
    first, second = pair
    config = json.loads((tiny_model_dir / "config.json").read_text())
    body = api.get("/api/models/compare/", {"ids": f"{first.pk},{second.pk}"}).json()
    assert body["architecture"]["layers"] == [config["num_hidden_layers"]] * 2
    assert body["architecture"]["hidden size"] == [config["hidden_size"]] * 2
    assert body["architecture"]["parameters"] == [first.num_parameters, second.num_parameters]
    html = logged_in.get(f"/compare/?models={first.pk},{second.pk}").content.decode()
    assert '<tr data-arch="layers">' in html and '<tr data-arch="hidden size">' in html
