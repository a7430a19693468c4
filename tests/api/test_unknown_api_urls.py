"""A URL under /api/ that no route matches (an id that is not a number: /api/jobs/0.5/) gets a JSON 404 like every
other answer of the API, not Django's HTML page; pages elsewhere keep the HTML one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/jobs/0.5/", "/api/models/1.5/download/", "/api/no-such-thing/"])
def test_an_unrouted_api_url_answers_json(api, url):
    response = api.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_page_that_does_not_exist_is_still_html(logged_in):
    response = logged_in.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
