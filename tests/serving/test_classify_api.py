"""/api/classify answers with the user's promoted model; bad requests get a 4xx with a message."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from jobs.registry import services as registry
from jobs.serving import engines

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


def test_the_model_is_loaded_once_and_swapped_on_promote(api, trained_model, second_model):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    assert api.post("/api/classify/", {"text": "good"}, format="json").json()["model"] == trained_model.pk
    first = engines.engine_for(trained_model)
    api.post("/api/classify/", {"text": "bad"}, format="json")
    assert engines.engine_for(trained_model) is first and first.stats.requests == 2
    # the override: the promote guard's verdict on a made-up record is not what this test is about
    assert api.post(f"/api/models/{second_model.pk}/promote/", {"override": True}, format="json").status_code == 200
    assert api.post("/api/classify/", {"text": "good"}, format="json").json()["model"] == second_model.pk
    assert engines.engine_for(second_model) is not first


def test_int8_serving_is_chosen_per_model_record(api, trained_model):
    trained_model.serving_precision = "int8"
    trained_model.save()
    api.post(f"/api/models/{trained_model.pk}/promote/")
    assert api.post("/api/classify/", {"text": "great good film"}, format="json").json()["label"] == "positive"
    assert engines.engine_for(trained_model).classifier.precision == "int8"


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


@pytest.fixture
def second_model(user, trained_model, tiny_model_dir):
    """Another record of the same files: a promote switches which record (and engine) serves."""
    return registry.import_model(user, tiny_model_dir, name="second")


TEXTS = ["great good film", "awful bad movie", "good", "bad bad bad", "wonderful great", "terrible awful"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_get_their_own_answers_and_a_promote_loses_none(api, trained_model, second_model):
    """60 requests at once through the ASGI request path (async view, batching engine); halfway, another model
    is promoted. Every request gets a 200 with the answer for its own text, from one of the two models."""
    api.post(f"/api/models/{trained_model.pk}/promote/")
    expected = {t: api.post("/api/classify/", {"text": t}, format="json").json() for t in TEXTS}
    client, auth = AsyncClient(), {"Authorization": f"Token {api.token}"}

    async def one(text):
        response = await client.post("/api/classify/", {"text": text}, content_type="application/json", headers=auth)
        return text, response.status_code, response.json()

    old = engines.engine_for(trained_model)

    async def load():
        # The old model is held busy while requests queue on it, and the promote happens with them in flight.
        with old.classifier._lock:
            first = [asyncio.ensure_future(one(TEXTS[i % len(TEXTS)])) for i in range(30)]
            async with asyncio.timeout(30):
                while old._queue.qsize() < 10:
                    await asyncio.sleep(0.001)
            await sync_to_async(registry.promote)(second_model)
        second = [asyncio.ensure_future(one(TEXTS[i % len(TEXTS)])) for i in range(30)]
        return await asyncio.gather(*first, *second)

    results = asyncio.run(load())
    assert [status for _, status, _ in results] == [200] * 60
    for text, _, body in results:
        assert body["model"] in (trained_model.pk, second_model.pk)
        assert body["label"] == expected[text]["label"]  # same files: same answer whichever model served it
        assert body["probabilities"] == pytest.approx(expected[text]["probabilities"], abs=1e-5)
    assert {body["model"] for _, _, body in results[30:]} == {second_model.pk}
    assert sum(body["model"] == trained_model.pk for _, _, body in results[:30]) >= 11
    assert old.stats.max_batch_seen > 1  # the queued requests were answered together
