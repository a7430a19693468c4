"""Guessing passwords is cut short on every route that takes one (the login page, the admin's, and POST
/api/auth/token/): the DISTILLERY_LOGIN_FAILURE_LIMIT-th failure for a username, or from an address, locks that
username or address for the cool-off (429), even with the right password; a success resets the count."""

from __future__ import annotations

import pytest
from axes.utils import reset
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
LIMIT = 5  # settings.AXES_FAILURE_LIMIT, the default of DISTILLERY_LOGIN_FAILURE_LIMIT


@pytest.fixture(autouse=True)
def _no_earlier_failures(user, other_user):
    for name in ("alice", "bob"):
        reset(username=name)
    for address in ("127.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3"):
        reset(ip=address)
    yield


def _page(username: str, password: str, address: str = "10.0.0.1") -> int:
    response = Client().post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )
    return 302 if response.status_code == 302 else response.status_code


def _token(username: str, password: str, address: str = "10.0.0.1") -> tuple[int, dict]:
    response = APIClient().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )
    return response.status_code, response.json() if response.content else {}


def test_the_login_page_refuses_the_right_password_after_too_many_wrong_ones(user):
    assert [_page("alice", "wrong") for _ in range(LIMIT)] == [200] * (LIMIT - 1) + [429]  # the form, its error
    assert _page("alice", "alice-pass-123") == 429
    assert _page("alice", "alice-pass-123", address="10.0.0.2") == 429  # the username is locked wherever from


def test_the_token_route_refuses_the_right_password_after_too_many_wrong_ones(user):
    assert [_token("alice", "wrong")[0] for _ in range(LIMIT)] == [400] * (LIMIT - 1) + [429]
    status, body = _token("alice", "alice-pass-123")
    assert status == 429 and "token" not in body


def test_the_admin_login_is_guarded_the_same_way(user):
    user.is_staff = True
    user.save()
    for _ in range(LIMIT):
        Client().post("/admin/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.3")
    right = {"username": "alice", "password": "alice-pass-123"}
    assert Client().post("/admin/login/", right, REMOTE_ADDR="10.0.0.3").status_code == 429


def test_one_address_guessing_many_usernames_is_refused_for_all(user, other_user):
    answers = [_page(name, "wrong", address="10.0.0.2") for name in ("carol", "dave", "erin", "frank", "gina")]
    assert answers == [200, 200, 200, 200, 429]  # five failures, no username twice
    assert _page("bob", "bob-pass-123", address="10.0.0.2") == 429
    assert _page("bob", "bob-pass-123", address="10.0.0.3") == 302  # bob himself is not locked


def test_a_success_resets_the_count(user):
    for _ in range(LIMIT - 1):
        _page("alice", "wrong")
    assert _page("alice", "alice-pass-123") == 302
    assert [_page("alice", "wrong") for _ in range(LIMIT - 1)] == [200] * (LIMIT - 1)
    assert _page("alice", "alice-pass-123") == 302
