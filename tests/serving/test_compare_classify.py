"""Compare's "Try a text": one text classified by several models side by side, each as classify would answer
it, for the models a user may see; the page carries the form."""

from __future__ import annotations

import pytest

from jobs.registry import services as registry
from jobs.serving import engines

pytestmark = pytest.mark.django_db

TEXT = "a great, good film"


@pytest.fixture
def pair(user, trained_model, tiny_model_dir):
    return trained_model, registry.import_model(user, tiny_model_dir, name="copy")


def test_each_model_answers_the_text_as_classify_would(api, pair):
    first, second = pair
    payload = {"ids": f"{second.pk},{first.pk}", "text": TEXT}
    response = api.post("/api/models/compare/classify/", payload, format="json")

    assert response.status_code == 200, response.content
    answers = response.json()["answers"]
    assert [(a["id"], a["name"]) for a in answers] == [(second.pk, "copy"), (first.pk, first.name)]
    for answer, record in zip(answers, (second, first), strict=True):
        expected = engines.engine_for(record).predict([TEXT])[0]
        assert (answer["label"], answer["truncated"]) == (expected.label, False)
        assert answer["probabilities"] == pytest.approx(expected.probabilities, abs=1e-6)
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
        assert answer["latency_ms"] > 0 and answer["serving_precision"] == record.serving_precision


def test_bad_requests_are_refused_with_the_reason(api, other_api, client, pair, settings):
    first, second = pair
    url = "/api/models/compare/classify/"
    settings.DISTILLERY_SERVING_CACHE = 1
    too_many = api.post(url, {"ids": f"{first.pk},{second.pk}", "text": TEXT}, format="json")
    assert too_many.status_code == 400
    assert too_many.json() == {"ids": ["at most 1 models answer a text together, not 2"]}
    settings.DISTILLERY_SERVING_CACHE = 4
    assert api.post(url, {"ids": f"{first.pk}", "text": "   "}, format="json").status_code == 400
    assert api.post(url, {"ids": "x", "text": TEXT}, format="json").json()["ids"][0].startswith("model ids are")
    assert other_api.post(url, {"ids": f"{first.pk}", "text": TEXT}, format="json").status_code == 404
    assert client.post(url, {"ids": f"{first.pk}", "text": TEXT}).status_code in (401, 403)


def test_the_compare_page_carries_the_try_form(logged_in, pair):
    first, second = pair
    html = logged_in.get(f"/compare/?models={first.pk},{second.pk}").content.decode()
    assert f'<form id="try-form" data-ids="{first.pk},{second.pk}">' in html and "js/try_text.js" in html
