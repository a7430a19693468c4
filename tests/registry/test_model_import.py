"""A model comes in as a zip: a Distillery download or any HF sequence-classification folder. It is unpacked
safely (only configs, tokenizers and safetensors weights; nothing outside its folder; a size cap counted as
it unpacks), loaded once to check it, and then serves like any model. Bad archives get a 400 and store nothing."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import ModelRecord
from jobs.serving import engines

pytestmark = pytest.mark.django_db

TEXTS = ["great good film", "awful bad movie, boring"]


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def _upload(api, content: bytes, name: str = "model.zip", **fields):
    return api.post("/api/models/", {"file": SimpleUploadedFile(name, content), **fields}, format="multipart")


def _stored(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file() and "models" in p.parts]


def test_a_downloaded_model_comes_back_in_and_answers_the_same(api, other_api, trained_model, settings):
    archive = b"".join(api.get(f"/api/models/{trained_model.pk}/download/").streaming_content)
    before = len(_stored(settings))

    response = _upload(other_api, archive, name=f"{trained_model.name}-{trained_model.pk}.zip")

    assert response.status_code == 201, response.content
    body = response.json()
    folder = f"{trained_model.name}-{trained_model.pk}"
    assert (body["kind"], body["name"], body["label_names"]) == ("imported", folder, trained_model.label_names)
    assert body["num_parameters"] > 1000 and body["serving_precision"] == "fp32"
    assert f"{folder}/README.md" in body["skipped"]
    record = ModelRecord.objects.get(pk=body["id"])
    assert "model.safetensors" in record.artifact_files and not any(n.endswith(".onnx") for n in record.artifact_files)
    assert len(_stored(settings)) == before + len(record.artifact_files)
    ours = engines.engine_for(trained_model).predict(TEXTS)
    theirs = engines.engine_for(record).predict(TEXTS)
    for a, b in zip(ours, theirs, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)


def test_a_plain_hf_folder_zipped_at_its_top_is_taken_with_its_own_label_names(api, tiny_model_dir):
    files = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file() and p.name != "distillery.json"}
    response = _upload(api, _zip(files), name="my-classifier.zip")
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "my-classifier"
    assert response.json()["label_names"] == ["negative", "positive"]  # from config.json's id2label


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"../evil/config.json": b"{}"}, "would land outside the model's folder"),
        ({"config.json": b"{}", "vocab.txt": b"a", "pytorch_model.bin": b"x"}, "no safetensors weights"),
        ({"config.json": b"{}", "model.safetensors": b"x"}, "no tokenizer files"),
        ({"weights/model.safetensors": b"x"}, "no config.json"),
        ({"config.json": b"{}", "tokenizer.json": b"{}", "model.safetensors": b"x"}, "could not load the archive's"),
        ({"config.json": b"{}", "model.safetensors": b"\0" * (3 * 2**20)}, "add up to more than 2 MB"),  # a bomb
    ],
)
def test_a_bad_archive_gets_a_400_and_stores_nothing(api, settings, files, message):
    settings.DISTILLERY_MAX_MODEL_UPLOAD_MB = 2
    response = _upload(api, _zip(files))
    assert response.status_code == 400
    assert message in response.json()["file"][0]
    assert "distillery-import-" not in response.json()["file"][0]  # no server path in the message
    assert ModelRecord.objects.count() == 0 and _stored(settings) == []


def test_not_a_zip_or_too_large_or_anonymous_is_refused(api, client, settings):
    response = _upload(api, b"PK but not really")
    assert response.status_code == 400 and response.json()["file"][0].startswith("not a zip archive")
    settings.DISTILLERY_MAX_MODEL_UPLOAD_MB = 0
    assert "the limit is 0 MB" in _upload(api, _zip({"config.json": b"{}"})).json()["file"][0]
    anonymous = client.post("/api/models/", {"file": SimpleUploadedFile("m.zip", b"x")})
    assert anonymous.status_code in (401, 403)
    assert not default_storage.exists("models")


def test_the_dashboard_imports_a_zip_and_shows_a_bad_ones_reason(logged_in, api, trained_model):
    archive = b"".join(api.get(f"/api/models/{trained_model.pk}/download/").streaming_content)
    assert 'action="/models/import/"' in logged_in.get("/").content.decode()

    response = logged_in.post("/models/import/", {"file": SimpleUploadedFile("mine.zip", archive), "name": "again"})

    record = ModelRecord.objects.get(name="again")
    assert response.status_code == 302 and response["Location"] == f"/models/{record.pk}/"
    page = logged_in.get(response["Location"]).content.decode()
    assert "Imported again; left out" in page and "README.md" in page
    bad = logged_in.post("/models/import/", {"file": SimpleUploadedFile("x.zip", b"nope")})
    assert bad.status_code == 400 and "not a zip archive" in bad.content.decode()
    assert "<details id=\"model-import\" open>" in bad.content.decode()
