"""Who may open a job's websocket: a script with its API token in the Authorization header or the query, with or
without an Origin; a browser with its session cookie only from this site's own origin (scheme, host and port)."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from jobs.datasets import services as dataset_services
from jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)
HOST = (b"host", b"127.0.0.1:8000")


@pytest.fixture
def job(user, sentiment_csv):
    dataset = dataset_services.create_dataset(user, "d", sentiment_csv)
    return Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="running")


@pytest.fixture
def session_cookie(client, user):
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def _opens(path: str, headers: list) -> bool:
    async def attempt():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect()
        if connected:
            status = await communicator.receive_json_from()
            assert status["type"] == "status"  # the stream really started
        await communicator.disconnect()
        return connected

    return asyncio.run(attempt())


def test_a_script_authenticates_with_the_authorization_header_and_needs_no_origin(job, api, other_api):
    path = f"/ws/jobs/{job.pk}/"
    assert _opens(path, [HOST, (b"authorization", f"Token {api.token}".encode())]) is True
    assert _opens(f"{path}?token={api.token}", [HOST]) is True
    assert _opens(path, [HOST, (b"authorization", f"Token {other_api.token}".encode())]) is False  # not theirs
    assert _opens(path, [HOST, (b"authorization", b"Token not-a-token")]) is False


def test_a_session_opens_the_stream_from_this_sites_own_origin_only(job, session_cookie):
    path = f"/ws/jobs/{job.pk}/"
    assert _opens(path, [HOST, session_cookie, (b"origin", b"http://127.0.0.1:8000")]) is True
    assert _opens(path, [HOST, session_cookie, (b"origin", b"http://127.0.0.1:9000")]) is False  # another port
    assert _opens(path, [HOST, session_cookie, (b"origin", b"http://evil.test:8000")]) is False
    assert _opens(path, [HOST, session_cookie]) is False  # a browser always sends Origin


def test_a_token_from_a_foreign_page_is_refused_too(job, api):
    headers = [HOST, (b"authorization", f"Token {api.token}".encode()), (b"origin", b"http://localhost:3000")]
    assert _opens(f"/ws/jobs/{job.pk}/", headers) is False


def test_an_operators_trusted_origin_may_open_it(job, session_cookie, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://distillery.example"]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "distillery.example"]
    headers = [(b"host", b"distillery.example"), session_cookie, (b"origin", b"https://distillery.example")]
    assert _opens(f"/ws/jobs/{job.pk}/", headers) is True
