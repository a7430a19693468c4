"""The ASGI fast path for token-authenticated POST /api/classify/ (jobs.api.fastpath) answers exactly as the DRF
view does, shares its throttle, and forgets tokens and promoted models as soon as they change."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.testing import HttpCommunicator
from rest_framework.authtoken.models import Token

from config.asgi import application
from jobs.registry import services as registry
from jobs.registry import storage
from jobs.serving import engines

pytestmark = pytest.mark.django_db(transaction=True)


def _post(token: str | None, body, *, host: bytes = b"testserver", raw: bytes | None = None) -> tuple[int, dict, dict]:
    headers = [(b"host", host), (b"content-type", b"application/json")]
    if token is not None:
        headers.append((b"authorization", f"Token {token}".encode()))
    payload = raw if raw is not None else json.dumps(body).encode()
    headers.append((b"content-length", str(len(payload)).encode()))  # DRF reads no body without it

    async def go():
        communicator = HttpCommunicator(application, "POST", "/api/classify/", body=payload, headers=headers)
        response = await communicator.get_response(timeout=30)
        # Let the application finish after its answer (Django closes its database connection then); leaving
        # the loop at once would strand that connection in the request's thread.
        await communicator.wait(timeout=30)
        return response

    response = asyncio.run(go())
    return response["status"], json.loads(response["body"] or b"null"), dict(response["headers"])


@pytest.fixture
def promoted(api, trained_model):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    return trained_model


@pytest.mark.parametrize(
    "payload",
    [
        {"text": "great good film"},
        {"texts": ["awful bad movie", "great good film"]},
        {"text": "good " * 400},
        {},
        {"text": ""},
        {"text": 42},
        {"texts": []},
        {"texts": ["ok", 7]},
        {"text": "a", "texts": ["b"]},
        {"texts": ["ok"] * 300},
        ["not", "an", "object"],
    ],
)
def test_the_fast_path_answers_as_the_drf_view_does(api, promoted, payload):
    status, body, headers = _post(api.token, payload)
    view = api.post("/api/classify/", payload, format="json")  # the test client goes through Django's view
    assert status == view.status_code
    if status != 200:
        assert body == view.json()
    else:
        assert headers[b"content-type"] == b"application/json"
        answers, expected = (body, view.json()) if isinstance(body, list) else ([body], [view.json()])
        for answer, reference in zip(answers, expected, strict=True):
            assert answer["model"] == promoted.pk
            assert {k: answer[k] for k in ("label", "truncated", "model")} == {
                k: reference[k] for k in ("label", "truncated", "model")
            }
            # Thread counts can differ between the two engine loads: the last float digits may too.
            assert answer["probabilities"] == pytest.approx(reference["probabilities"], abs=1e-3)


def test_bad_tokens_hosts_bodies_and_a_missing_model(api, trained_model):
    assert _post("nope", {"text": "good"})[:2] == (401, {"detail": "Invalid token."})
    assert _post(api.token, {"text": "good"})[0] == 404  # nothing promoted yet
    api.post(f"/api/models/{trained_model.pk}/promote/")
    assert _post(api.token, {"text": "good"}, host=b"evil.example")[0] == 400
    status, body, _ = _post(api.token, None, raw=b'{"text": "go')
    assert status == 400 and "JSON parse error" in body["detail"]
    assert _post(api.token, None, raw=b'{"text": "' + b"a" * 11_000_000 + b'"}')[0] == 413


def test_without_a_token_the_request_goes_to_django(api, promoted):
    status, body, _ = _post(None, {"text": "good"})
    assert status in (401, 403) and body == {"detail": "Authentication credentials were not provided."}


def test_the_throttle_is_shared_with_the_view(api, promoted, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"classify": "3/hour"}}
    assert [_post(api.token, {"text": "good"})[0] for _ in range(2)] == [200, 200]
    assert api.post("/api/classify/", {"text": "good"}, format="json").status_code == 200  # the third
    status, body, headers = _post(api.token, {"text": "good"})
    assert status == 429 and "throttled" in body["detail"] and int(headers[b"retry-after"]) > 0
    assert api.post("/api/classify/", {"text": "good"}, format="json").status_code == 429


def test_a_deleted_token_and_a_promote_apply_at_once(api, user, promoted, tiny_model_dir):
    assert _post(api.token, {"text": "good"})[1]["model"] == promoted.pk
    other = registry.import_model(user, tiny_model_dir, name="other")
    registry.promote(other)
    assert _post(api.token, {"text": "good"})[1]["model"] == other.pk
    Token.objects.filter(key=api.token).delete()
    assert _post(api.token, {"text": "good"})[0] == 401


def test_a_full_engine_queue_is_a_503_that_says_retry(api, promoted, monkeypatch):
    from mlcore.serving import Overloaded

    engine = engines.engine_for(promoted)

    def full(texts):
        raise Overloaded("the classify queue is full (2048 requests); retry shortly")

    monkeypatch.setattr(engine, "submit", full)
    with engine._busy:  # a full queue has a batch running: the request is queued (idle, a lone one runs inline)
        status, body, _ = _post(api.token, {"text": "good"})
        assert (status, body) == (503, {"detail": "the classify queue is full (2048 requests); retry shortly"})
        assert api.post("/api/classify/", {"text": "good"}, format="json").status_code == 503  # the view too


def test_baseline_serving_takes_the_django_path_with_the_baseline_engine(api, promoted, settings):
    from mlcore.serving import BaselineEngine

    settings.DISTILLERY_SERVING_ENGINE = "baseline"
    status, body, _ = _post(api.token, {"text": "great good film"})
    assert status == 200 and body["model"] == promoted.pk, body
    assert isinstance(engines.engine_for(promoted), BaselineEngine)
    assert "baseline" in [key[2] for key in engines.loaded()]


def _spinning(engine) -> str:
    """The serving session's allow_spinning entry, as ONNX Runtime holds it."""
    options = engine.classifier.model.session.get_session_options()
    return options.get_session_config_entry("session.intra_op.allow_spinning")


def test_the_promoted_model_is_served_by_onnx_runtime_or_torch_as_configured(api, promoted, settings, monkeypatch):
    from mlcore import onnxrt

    expected = _post(api.token, {"text": "a great good film"})[1]
    engine = engines.engine_for(promoted)
    assert engine.classifier.runtime == "onnx" and engine.classifier.precision == promoted.serving_precision
    assert _spinning(engine) == "0"  # DISTILLERY_SERVING_SPIN's default
    exports = settings.DISTILLERY_MODEL_CACHE / "onnx" / promoted.artifact_prefix.split("/")[-1]
    assert (exports / "model.onnx").is_file()  # a cache beside the models, not the stored folder
    assert not (storage.model_dir(promoted) / onnxrt.EXPORT_DIR).exists()

    engines.reset()
    settings.DISTILLERY_SERVING_SPIN = True
    assert _post(api.token, {"text": "a great good film"})[1] == expected
    assert _spinning(engines.engine_for(promoted)) == "1"

    settings.DISTILLERY_SERVING_RUNTIME = "torch"
    body = _post(api.token, {"text": "a great good film"})[1]
    assert engines.engine_for(promoted).classifier.runtime == "torch"
    assert body["label"] == expected["label"] and abs(body["probability"] - expected["probability"]) < 0.02

    # A model ONNX cannot take is served by PyTorch rather than failing.
    engines.reset()
    settings.DISTILLERY_SERVING_RUNTIME = "onnx"
    monkeypatch.setattr(onnxrt, "export", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("unsupported op")))
    status, body, _ = _post(api.token, {"text": "a great good film"})
    assert status == 200 and body["label"] == expected["label"]
    assert engines.engine_for(promoted).classifier.runtime == "torch"
