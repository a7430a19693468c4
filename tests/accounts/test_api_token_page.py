"""The account page shows your API token, which authenticates the API, and makes a new one on request: the
old one stops working at once."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _works(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/models/").status_code


def test_the_page_shows_a_working_token_and_a_new_one_replaces_it(logged_in, user):
    html = logged_in.get("/account/token/").content.decode()
    old = Token.objects.get(user=user).key
    assert f'<code id="api-token">{old}</code>' in html and 'href="/account/token/"' in html
    assert _works(old) == 200

    response = logged_in.post("/account/token/", follow=True)

    new = Token.objects.get(user=user).key
    assert new != old and new in response.content.decode()
    assert _works(old) == 401 and _works(new) == 200


def test_the_page_needs_a_login(client):
    response = client.get("/account/token/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
