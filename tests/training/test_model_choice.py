"""What a user may train from: catalogue ids, hub ids while online, and folders under the operator's allow-list
(DISTILLERY_MODEL_ROOTS). Any other server path gets one answer whether it exists or not, so the server's
folders cannot be probed, and no user trains from another user's stored model by its path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(api, sentiment_csv):
    return api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()["id"]


def _refusal(api, dataset, **fields) -> tuple[int, str]:
    response = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset, **fields}, format="json")
    body = response.json()
    return response.status_code, str(body.get("base_model") or body.get("params"))


def test_server_paths_get_one_answer_whether_they_exist_or_not(api, dataset, trained_model, tmp_path):
    others = default_storage.path(trained_model.artifact_prefix)  # another user's model, trained, with config.json
    names = ["/etc", "/no/such/folder", "../../etc", "~", others, str(tmp_path.parent / "nothing-here")]
    answers = {name: _refusal(api, dataset, base_model=name) for name in names}
    assert {code for code, _ in answers.values()} == {400}
    assert len({message.replace(repr(name), "NAME") for name, (_, message) in answers.items()}) == 1
    assert all("is not a model this server offers" in message for _, message in answers.values())


def test_a_folder_under_the_allowed_roots_is_taken_and_a_symlink_out_of_them_is_not(
    api, dataset, tiny_bert, tmp_path, settings
):
    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(tiny_bert, root / "tiny")
    (root / "escape").symlink_to("/etc", target_is_directory=True)
    settings.DISTILLERY_MODEL_ROOTS = [root.resolve()]

    payload = {"kind": "finetune", "dataset": dataset, "base_model": str(root / "tiny")}
    ok = api.post("/api/jobs/", payload, format="json")
    assert ok.status_code == 201 and ok.json()["base_model"] == str((root / "tiny").resolve())
    assert _refusal(api, dataset, base_model=str(tiny_bert))[0] == 400  # outside the roots now
    code, message = _refusal(api, dataset, base_model=str(root / "escape"))
    assert code == 400 and "is not a model this server offers" in message


def test_a_name_longer_than_a_file_system_takes_is_refused_not_a_server_error(api, dataset, settings, monkeypatch):
    # pathlib raises for a name component over 255 bytes (ENAMETOOLONG) instead of answering: these were 500s.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, message = _refusal(api, dataset, base_model="0" * 300)  # shaped like a hub id, and no path
    assert code == 400 and "this server is offline" in message
    settings.DISTILLERY_MODEL_ROOTS = [Path("/")]  # so that the folder check is reached
    code, message = _refusal(api, dataset, base_model="/" + "x" * 260)
    assert code == 400 and "is not a model this server offers" in message


def test_hub_models_are_refused_at_once_while_the_server_is_offline(api, dataset, monkeypatch, fake_hub):
    fake_hub.models.add("some-org/some-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _refusal(api, dataset, base_model="bert-base-uncased") == (
        400, "['bert-base-uncased is not available on this server (offline, or not installed)']"
    )
    code, message = _refusal(api, dataset, base_model="some-org/some-model")
    assert code == 400 and "this server is offline" in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    payload = {"kind": "finetune", "dataset": dataset, "base_model": "some-org/some-model"}
    ok = api.post("/api/jobs/", payload, format="json")
    assert ok.status_code == 201


def test_a_distillations_student_is_checked_the_same_way(api, trained_model):
    response = api.post("/api/jobs/", {
        "kind": "distill", "dataset": trained_model.dataset_id, "teacher": trained_model.pk,
        "params": {"student": "/etc"},
    }, format="json")  # fmt: skip
    assert response.status_code == 400 and "is not a model this server offers" in str(response.json()["params"])
