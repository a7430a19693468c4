"""/api/classify answers with the user's promoted model; bad requests get a 4xx with a message."""

from __future__ import annotations

import pytest

from jobs import serving

pytestmark = pytest.mark.django_db


def test_classify_without_a_promoted_model_says_how_to_get_one(api, trained_model):
    response = api.post("/api/classify/", {"text": "good"}, format="json")
    assert response.status_code == 404
    assert "promote" in response.json()["detail"]


def test_one_text_and_a_batch_are_classified_by_the_promoted_model(api, trained_model):
    assert api.post(f"/api/models/{trained_model.pk}/promote/").status_code == 200
    one = api.post("/api/classify/", {"text": "great great film"}, format="json").json()
    assert set(one) >= {"label", "probability", "probabilities", "truncated", "model"}
    assert one["label"] in ("negative", "positive")
    assert one["probability"] == max(one["probabilities"].values())
    batch = api.post("/api/classify/", {"texts": ["awful bad movie", "great good film"]}, format="json").json()
    assert [p["label"] for p in batch] == ["negative", "positive"]


def test_the_model_is_loaded_once_and_swapped_on_promote(api, trained_model, user, tiny_bert, tmp_path):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    api.post("/api/classify/", {"text": "good"}, format="json")
    first = serving.classifier_for(trained_model)
    api.post("/api/classify/", {"text": "bad"}, format="json")
    assert serving.classifier_for(trained_model) is first


@pytest.mark.parametrize(
    "payload, message",
    [
        ({}, "either 'text'"),
        ({"text": ""}, "blank"),
        ({"text": "   "}, "blank"),
        ({"texts": []}, "empty"),
        ({"texts": "not a list"}, "list"),
        ({"text": 42}, "not a valid string"),
        ({"texts": ["ok", 7]}, "not a valid string"),
        ({"text": "a", "texts": ["b"]}, "either 'text'"),
        ({"texts": ["ok"] * 300}, "at most 256"),
    ],
)
def test_bad_classify_requests_get_a_400_with_a_message(api, trained_model, payload, message):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    response = api.post("/api/classify/", payload, format="json")
    assert response.status_code == 400
    assert message.lower() in str(response.json()).lower()


def test_a_long_text_is_truncated_and_says_so(api, trained_model):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    body = api.post("/api/classify/", {"text": "good " * 500}, format="json").json()
    assert body["truncated"] is True
    assert api.post("/api/classify/", {"text": "good"}, format="json").json()["truncated"] is False


def test_the_classify_page_shows_the_label(client, user, trained_model):
    client.force_login(user)
    assert "No promoted model" in client.get("/classify/").content.decode()
    client.post(f"/models/{trained_model.pk}/promote/")
    page = client.post("/classify/", {"text": "great good film"}).content.decode()
    assert "positive" in page
