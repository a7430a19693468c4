"""?limit= and ?offset= larger than a database can hold get a page (offset that large: an empty one), not a 500:
DRF handed them to SQL as they came."""

from __future__ import annotations

import pytest

from jobs.api.pagination import MAX_ROWS
from jobs.datasets import services as dataset_services

pytestmark = pytest.mark.django_db

HUGE = 2938528119838447161573376  # what Schemathesis sent


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def test_a_huge_limit_is_taken_as_the_most_rows_a_page_can_hold(api, dataset):
    response = api.get(f"/api/datasets/?limit={HUGE}")
    assert response.status_code == 200, response.content
    assert [row["id"] for row in response.json()["results"]] == [dataset.pk]


def test_a_huge_offset_gets_an_empty_page(api, dataset):
    response = api.get(f"/api/datasets/?offset={HUGE}&limit={HUGE}")
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 1 and response.json()["results"] == []


@pytest.mark.parametrize("url", ["/api/jobs/", "/api/models/", "/api/sweeps/"])
def test_every_list_is_bounded_the_same_way(api, url):
    assert api.get(f"{url}?offset={HUGE}&limit={HUGE}").status_code == 200


def test_the_bound_and_a_page_added_to_it_fit_a_signed_64_bit_integer():
    assert MAX_ROWS + MAX_ROWS < 2**63
