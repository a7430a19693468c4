"""/api/explain/ explains the promoted model's prediction; a model's serving precision is the owner's choice."""

from __future__ import annotations

import pytest

from jobs.serving import engines

pytestmark = pytest.mark.django_db


def test_an_explanation_matches_the_prediction(api, trained_model):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    body = api.post("/api/explain/", {"text": "great good film"}, format="json").json()
    predicted = api.post("/api/classify/", {"text": "great good film"}, format="json").json()
    assert body["model"] == trained_model.pk and body["method"] == "gradient_x_input"
    assert body["label"] == predicted["label"]
    assert body["probabilities"] == pytest.approx(predicted["probabilities"], abs=1e-5)
    n = len(body["tokens"])
    assert body["tokens"][0] == "[CLS]" and body["tokens"][-1] == "[SEP]" and "great" in body["tokens"]
    assert len(body["importance"]) == n and max(abs(v) for v in body["importance"]) == pytest.approx(1.0)
    assert len(body["attention"]) == n and all(sum(row) == pytest.approx(1.0, abs=1e-4) for row in body["attention"])


def test_an_int8_model_is_explained_with_its_fp32_weights(api, trained_model):
    api.patch(f"/api/models/{trained_model.pk}/", {"serving_precision": "int8"}, format="json")
    api.post(f"/api/models/{trained_model.pk}/promote/")
    body = api.post("/api/explain/", {"text": "awful bad movie"}, format="json").json()
    assert (body["serving_precision"], body["explained_precision"]) == ("int8", "fp32")
    trained_model.refresh_from_db()
    assert engines.explainer_for(trained_model).precision == "fp32"


@pytest.mark.parametrize("payload, status, message", [
    ({"text": ""}, 400, "blank"), ({"text": "   "}, 400, "blank"), ({}, 400, "required"), ({"text": 3}, 400, "string"),
])
def test_bad_explain_requests_get_a_4xx(api, trained_model, payload, status, message):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    response = api.post("/api/explain/", payload, format="json")
    assert response.status_code == status and message in str(response.json()).lower()


def test_explain_without_a_promoted_model_is_a_404(api, trained_model):
    assert api.post("/api/explain/", {"text": "good"}, format="json").status_code == 404


def test_the_owner_chooses_the_serving_precision(api, other_api, trained_model):
    assert api.get(f"/api/models/{trained_model.pk}/").json()["serving_precision"] == "fp32"
    response = api.patch(f"/api/models/{trained_model.pk}/", {"serving_precision": "int8"}, format="json")
    assert response.status_code == 200 and response.json()["serving_precision"] == "int8"
    bad = api.patch(f"/api/models/{trained_model.pk}/", {"serving_precision": "fp16"}, format="json")
    assert bad.status_code == 400 and "not a valid choice" in str(bad.json())
    frozen = api.patch(f"/api/models/{trained_model.pk}/", {"metrics": {}, "num_parameters": 1}, format="json")
    assert frozen.status_code == 200 and frozen.json()["num_parameters"] == trained_model.num_parameters
    assert other_api.patch(f"/api/models/{trained_model.pk}/", {"name": "x"}, format="json").status_code == 404
    assert api.put(f"/api/models/{trained_model.pk}/", {"name": "x"}, format="json").status_code == 405
    trained_model.refresh_from_db()
    assert trained_model.serving_precision == "int8" and trained_model.name != "x"


def test_the_user_chooses_the_label_to_explain(api, trained_model):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    text = "great good film"
    predicted = api.post("/api/explain/", {"text": text}, format="json").json()
    other = next(name for name in trained_model.label_names if name != predicted["label"])
    chosen = api.post("/api/explain/", {"text": text, "label": other}, format="json").json()
    assert (predicted["explained_label"], chosen["explained_label"]) == (predicted["label"], other)
    assert chosen["label"] == predicted["label"]  # the prediction stays; the importance is towards `other`
    assert chosen["importance"] == pytest.approx([-v for v in predicted["importance"]], abs=1e-4)
    bad = api.post("/api/explain/", {"text": text, "label": "maybe"}, format="json")
    assert bad.status_code == 400 and "the model's labels are" in bad.json()["label"][0]
