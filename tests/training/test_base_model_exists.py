"""A base model that does not exist is refused at launch, from the form and the API alike, with a message that
says why, instead of a job that fails when its worker cannot load it (47 s later, with a traceback). Offline
(HF_HUB_OFFLINE) a hub id is taken only when this machine's Hugging Face cache has it; online the hub is asked."""

from __future__ import annotations

import socket
import time
from html import unescape

import pytest
from huggingface_hub import constants

from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(api, sentiment_csv):
    return api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()["id"]


@pytest.fixture
def hf_cache(tmp_path, monkeypatch, tiny_bert):
    """An empty Hugging Face cache for this process, and a way to put a model in it as a download leaves it
    (models--org--name/refs/main naming a snapshot folder with the files)."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    def put(model_id: str) -> None:
        repo = cache / ("models--" + model_id.replace("/", "--"))
        snapshot = repo / "snapshots" / ("a" * 40)
        snapshot.mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("a" * 40)
        (snapshot / "config.json").write_bytes((tiny_bert / "config.json").read_bytes())

    return put


def _api_answer(api, dataset, base_model) -> tuple[int, str]:
    response = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset, "base_model": base_model}, format="json")
    return response.status_code, " ".join(response.json().get("base_model", [])) or str(response.json())


def _form_answer(logged_in, dataset, base_model) -> tuple[int, str]:
    response = logged_in.post("/jobs/new/", {
        "kind": "finetune", "dataset": dataset, "base_model": base_model, "batch_size": "16", "learning_rate": "2e-5",
        "epochs": "1", "max_length": "64", "seed": "42", "truncation": "head", "scheduler": "exponential",
        "warmup_ratio": "0", "weight_decay": "0",
    })  # fmt: skip
    html = unescape(response.content.decode())
    if response.status_code != 400:
        return response.status_code, ""
    start = html.index('id="id_base_model"')  # the field's own error, below it
    return 400, html[start : html.index("</div>", start)]


@pytest.mark.parametrize("answer", [_api_answer, _form_answer], ids=["api", "form"])
def test_offline_a_hub_id_not_in_the_cache_is_refused_saying_so(api, logged_in, dataset, hf_cache, monkeypatch, answer):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, message = answer(api if answer is _api_answer else logged_in, dataset, "acme/no-such-model")
    assert code == 400
    assert "acme/no-such-model is a hub model that is not in this server's model cache, and this server is offline" in (
        message
    )
    assert Job.objects.count() == 0


def test_offline_a_hub_id_in_the_cache_is_taken(api, dataset, hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf_cache("acme/cached-model")
    assert _api_answer(api, dataset, "acme/cached-model")[0] == 201
    assert Job.objects.get().base_model == "acme/cached-model"


def test_offline_a_catalogue_hub_model_is_offered_once_cached(logged_in, hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert 'value="bert-base-uncased"' not in logged_in.get("/").content.decode()  # the base model picker
    hf_cache("bert-base-uncased")
    assert 'value="bert-base-uncased"' in logged_in.get("/").content.decode()


@pytest.mark.parametrize("answer", [_api_answer, _form_answer], ids=["api", "form"])
def test_online_a_model_the_hub_does_not_have_is_refused(api, logged_in, dataset, hf_cache, fake_hub, answer):
    fake_hub.models.add("acme/real-model")
    client = api if answer is _api_answer else logged_in
    code, message = answer(client, dataset, "acme/reel-model")
    assert code == 400 and "there is no model acme/reel-model on the Hugging Face Hub (or it is private)" in message
    assert answer(client, dataset, "acme/real-model")[0] in (201, 302)
    assert fake_hub.asked == ["acme/reel-model", "acme/real-model"]


def test_online_a_gated_model_is_refused_saying_it_is_gated(api, dataset, hf_cache, fake_hub):
    fake_hub.gated.add("acme/gated")
    code, message = _api_answer(api, dataset, "acme/gated")
    assert code == 400 and "acme/gated is gated on the Hugging Face Hub" in message


def test_online_a_hub_this_server_cannot_reach_is_a_quick_refusal_that_says_so(api, dataset, hf_cache, monkeypatch):
    with socket.socket() as unused:  # a port nothing listens on: the connection is refused at once
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    started = time.monotonic()
    code, message = _api_answer(api, dataset, "acme/some-model")
    assert code == 400 and "the Hugging Face Hub cannot be reached to check it" in message
    assert "set HF_HUB_OFFLINE=1" in message
    assert time.monotonic() - started < 10
