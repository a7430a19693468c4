"""The account page and the API show your webhook secret (the key of your webhooks' signatures, apart from your
API token) and make a new one on request; the API token stays as it was."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import WebhookSecret

pytestmark = pytest.mark.django_db


def test_the_account_page_shows_the_secret_and_its_button_makes_a_new_one(logged_in, user):
    html = logged_in.get("/account/token/").content.decode()
    old = WebhookSecret.objects.get(user=user).secret
    token = Token.objects.get(user=user).key
    assert f'<code id="webhook-secret">{old}</code>' in html and old != token
    assert 'action="/account/webhook-secret/"' in html

    response = logged_in.post("/account/webhook-secret/", follow=True)

    new = WebhookSecret.objects.get(user=user).secret
    assert new != old and f'<code id="webhook-secret">{new}</code>' in response.content.decode()
    assert Token.objects.get(user=user).key == token  # the API token is left alone


def test_a_new_secret_takes_a_post_and_a_login(logged_in, client, user):
    assert logged_in.get("/account/webhook-secret/").status_code == 405
    client.logout()
    response = client.post("/account/webhook-secret/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not WebhookSecret.objects.filter(user=user).exists()


def test_the_api_shows_the_secret_and_makes_a_new_one(api, user):
    shown = api.get("/api/account/webhook-secret/").json()
    assert shown["secret"] == WebhookSecret.objects.get(user=user).secret and "created_at" in shown

    made = api.post("/api/account/webhook-secret/").json()

    assert made["secret"] != shown["secret"] and made["secret"] == WebhookSecret.objects.get(user=user).secret
    assert api.get("/api/account/webhook-secret/").json()["secret"] == made["secret"]
    assert APIClient().get("/api/account/webhook-secret/").status_code == 401
