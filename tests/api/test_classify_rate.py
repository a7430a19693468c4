"""Every classify-like route counts in one window per user: /api/classify/, Try a text (one per model), an
explanation (weighted by its cost) and the classify page. Before, explain and Try a text had a limiter of their
own and the page had none."""

from __future__ import annotations

import pytest

from jobs.api.throttles import ClassifyRateThrottle
from jobs.registry.services import promote

pytestmark = pytest.mark.django_db


@pytest.fixture
def rate(settings):
    from django.core.cache import cache

    cache.clear()  # a fresh window for these users, whatever ran before against this Redis
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"classify": "8/hour"}}
    return 8


@pytest.fixture
def promoted(trained_model):
    return promote(trained_model)


def _classify(api) -> int:
    return api.post("/api/classify/", {"text": "a good film"}, format="json").status_code


def test_an_explanation_counts_its_cost_against_the_same_rate(api, promoted, rate):
    assert ClassifyRateThrottle.EXPLAIN_COST == 4
    assert api.post("/api/explain/", {"text": "a good film"}, format="json").status_code == 200  # 4 of 8
    assert [_classify(api) for _ in range(4)] == [200] * 4  # 8 of 8
    assert _classify(api) == 429
    refused = api.post("/api/explain/", {"text": "a good film"}, format="json")
    assert refused.status_code == 429 and "Retry-After" in refused


def test_try_a_text_counts_one_per_model_against_the_same_rate(api, promoted, rate, trained_model):
    ids = f"{trained_model.pk},{trained_model.pk}"
    for _ in range(3):  # 2 each: 6 of 8
        assert api.post("/api/models/compare/classify/", {"ids": ids, "text": "fine"}, format="json").status_code == 200
    assert [_classify(api) for _ in range(3)] == [200, 200, 429]
    assert api.post("/api/models/compare/classify/", {"ids": ids, "text": "x"}, format="json").status_code == 429


def test_the_classify_page_counts_against_the_same_rate(api, logged_in, promoted, rate):
    assert [_classify(api) for _ in range(7)] == [200] * 7
    page = logged_in.post("/classify/", {"text": "a good film"})
    assert page.status_code == 200 and b"try again" not in page.content  # the 8th
    refused = logged_in.post("/classify/", {"text": "a good film"})
    assert refused.status_code == 429 and "try again in" in refused.content.decode()
    assert _classify(api) == 429


def test_another_users_requests_do_not_count(api, other_api, promoted, rate, other_user, trained_model):
    assert [_classify(api) for _ in range(8)] == [200] * 8
    assert _classify(api) == 429
    assert other_api.post("/api/explain/", {"text": "x"}, format="json").status_code == 404  # counted, no model
