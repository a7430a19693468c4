"""A JSON body nested thousands of levels deep is a 400 on every JSON route, signed in or not, through Django and
through the classify fast path; it used to be a RecursionError and a 500."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import HttpCommunicator
from rest_framework.test import APIClient

from config.asgi import application
from jobs.api.parsers import MAX_DEPTH

pytestmark = pytest.mark.django_db(transaction=True)
ROUTES = ["/api/jobs/", "/api/sweeps/", "/api/classify/", "/api/explain/", "/api/models/compare/classify/",
          "/api/datasets/", "/api/auth/token/"]  # fmt: skip


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_a_body_nested_too_deep_is_a_400_through_django(api, route, depth):
    client = api if route != "/api/auth/token/" else APIClient()  # the token route takes anyone
    response = client.generic("POST", route, _nested(depth), content_type="application/json")
    assert response.status_code == 400
    assert "nested more than 32 levels deep" in response.json()["detail"]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_a_body_nested_too_deep_is_a_400_on_the_fast_path(api, depth):
    body = _nested(depth)
    headers = [
        (b"host", b"testserver"), (b"content-type", b"application/json"),
        (b"authorization", f"Token {api.token}".encode()), (b"content-length", str(len(body)).encode()),
    ]  # fmt: skip

    async def go():
        communicator = HttpCommunicator(application, "POST", "/api/classify/", body=body, headers=headers)
        response = await communicator.get_response(timeout=30)
        await communicator.wait(timeout=30)
        return response

    response = asyncio.run(go())
    assert response["status"] == 400 and b"nested more than 32 levels deep" in response["body"]


def test_a_body_at_the_limit_is_parsed(api):
    response = api.generic("POST", "/api/jobs/", _nested(MAX_DEPTH), content_type="application/json")
    assert response.status_code == 400 and "nested" not in str(response.json())  # refused for what it says
