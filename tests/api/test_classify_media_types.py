"""POST /api/classify/ reads JSON only, and both of its paths say so alike: a form sent with a token (which the
ASGI fast path would have read as JSON, a 400) and one sent by a signed-in browser both get DRF's 415."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import pytest
from channels.testing import HttpCommunicator

from config.asgi import application
from jobs.registry import services as registry

pytestmark = pytest.mark.django_db(transaction=True)


def _post_through_asgi(token: str, body: bytes, content_type: bytes) -> tuple[int, dict]:
    headers = [
        (b"host", b"testserver"), (b"content-type", content_type), (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Token {token}".encode()),
    ]  # fmt: skip

    async def go():
        communicator = HttpCommunicator(application, "POST", "/api/classify/", body=body, headers=headers)
        response = await communicator.get_response(timeout=30)
        await communicator.wait(timeout=30)  # let Django close the request's database connection
        return response

    response = asyncio.run(go())
    return response["status"], json.loads(response["body"])


@pytest.fixture
def promoted(trained_model):
    return registry.promote(trained_model)


def test_a_form_with_a_token_gets_the_views_415(api, promoted):
    status, body = _post_through_asgi(
        api.token, urlencode({"text": "great good film"}).encode(), b"application/x-www-form-urlencoded"
    )
    assert status == 415
    assert body == {"detail": 'Unsupported media type "application/x-www-form-urlencoded" in request.'}


def test_a_form_from_a_signed_in_browser_gets_the_same_415(logged_in, promoted):
    response = logged_in.post("/api/classify/", {"text": "great good film"})  # multipart, as a form sends it
    assert response.status_code == 415


def test_json_with_a_token_is_still_answered_by_the_fast_path(api, promoted):
    status, body = _post_through_asgi(api.token, json.dumps({"text": "great good film"}).encode(), b"application/json")
    assert status == 200 and body["model"] == promoted.pk
