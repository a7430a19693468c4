"""The OpenAPI schema, the interactive docs, the health endpoint and token login."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_lists_the_contract(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/datasets/", "/api/jobs/", "/api/jobs/{id}/metrics/", "/api/jobs/{id}/cancel/",
                 "/api/models/", "/api/models/{id}/promote/", "/api/classify/", "/api/classify/file/",
                 "/api/jobs/{id}/output/", "/api/explain/", "/api/account/webhook-secret/"):
        assert path in schema["paths"], path


def test_the_schema_builds_for_anyone_without_warnings(tmp_path):
    """As `manage.py spectacular` and the docs page build it: for an anonymous request, every view described."""
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/classify/file/:" in out.read_text()


def test_the_api_docs_page_works_offline(api):
    page = api.get("/api/docs/").content.decode()
    assert "swagger-ui" in page and "cdn." not in page


def test_healthz_reports_the_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert (checks["database"], checks["redis"]) == ("ok", "ok")
    assert "online" in checks["workers"]


def test_a_user_gets_an_api_token_with_their_password(client, user):
    response = client.post("/api/auth/token/", {"username": "alice", "password": "alice-pass-123"})
    assert response.status_code == 200
    token = response.json()["token"]
    assert client.get("/api/datasets/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert client.post("/api/auth/token/", {"username": "alice", "password": "wrong"}).status_code == 400


def test_a_stale_token_sent_along_does_not_stop_a_login_for_a_new_one(client, user):
    # The token route authenticates nobody but by the password: an old Authorization header was a 401.
    right = {"username": "alice", "password": "alice-pass-123"}
    response = client.post("/api/auth/token/", right, HTTP_AUTHORIZATION="Token no-such-token")
    assert response.status_code == 200 and response.json()["token"]
