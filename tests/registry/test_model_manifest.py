"""An imported model's distillery.json is checked against the model before anything is stored: labels, metrics,
max_length, truncation and the training config must be what mlcore writes, or the import is a 400 naming the
field. A record that holds bad values from before the check still downloads."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import ModelRecord

pytestmark = pytest.mark.django_db

PREFIX = "distillery.json: "


def _download(api, record) -> bytes:
    return b"".join(api.get(f"/api/models/{record.pk}/download/").streaming_content)


def _tampered(archive: bytes, change: Callable[[dict], None]) -> bytes:
    """The archive again, its distillery.json changed by `change` (and written as Python's json writes it, NaN
    included); every other member as it was."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/distillery.json"):
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            dst.writestr(info, data, compress_type=info.compress_type)
    return out.getvalue()


def _post(api, content: bytes):
    return api.post("/api/models/", {"file": SimpleUploadedFile("model.zip", content)}, format="multipart")


def _stored(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file() and "models" in p.parts]


def _set(*path, value) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("metrics", "test/accuracy", value="high"),
         "metrics['test/accuracy'] must be a finite number, got 'high'"),
        (_set("metrics", "test/loss", value=float("nan")), "metrics['test/loss'] must be a finite number, got nan"),
        (_set("metrics", "val/accuracy", value=True), "metrics['val/accuracy'] must be a finite number, got True"),
        (_set("metrics", "int8", value={"speedup": 100.0, "accuracy_drop_points": 0}),
         "metrics['int8'] must be a finite number, got {"),
        (_set("metrics", "test/report", "confusion_matrix", value=[[8, 0]]),
         "metrics['test/report']['confusion_matrix'] must be 2 rows of 2 counts"),
        (_set("metrics", "test/report", "per_class", "neutral", value={"f1": 1.0}),
         "metrics['test/report']['per_class']['neutral'] is not one of label_names"),
        (_set("metrics", value=[1.0]), "metrics must be an object of numbers"),
        (_set("max_length", value=100000),
         "max_length must be a whole number from 8 to 128 (the model's position embeddings), got 100000"),
        (_set("max_length", value=4), "max_length must be a whole number from 8 to 128"),
        (_set("max_length", value="32"), "max_length must be a whole number from 8 to 128"),
        (_set("config", "max_length", value=100000), "config: max_length must be in [8, 512], got 100000"),
        (_set("config", "max_length", value=256),
         "config's max_length must be a whole number from 8 to 128 (the model's position embeddings), got 256"),
        (_set("config", "colour", value="red"), "config: unknown parameter 'colour'"),
        (_set("config", value="lr=3e-3"), "config: parameters must be a JSON object"),
        (_set("truncation", value="tail"), "truncation must be one of 'head', 'head_tail', got 'tail'"),
        (_set("kind", value="imported"), "kind must be 'finetune' or 'distill', got 'imported'"),
        (_set("base_model", value=["bert"]), "base_model must be a string of at most 300 characters"),
        (_set("label_names", value=["negative", "positive", "neutral"]),
         "label_names has 3 names but the model has 2 labels"),
        (_set("label_names", value=["positive", "positive"]), "label_names names 'positive' more than once"),
        (_set("label_names", value=[0, 1]), "label_names must be a list of non-empty strings"),
        (_set("label_names", value=["negative", " "]), "label_names must be a list of non-empty strings"),
        (_set("label_names", value="np"), "label_names must be a list of non-empty strings"),
    ],
)  # fmt: skip
def test_a_tampered_manifest_gets_a_400_naming_the_field_and_stores_nothing(
    api, other_api, settings, trained_model, change, message
):
    archive = _tampered(_download(api, trained_model), change)
    before = sorted(_stored(settings))

    response = _post(other_api, archive)

    assert response.status_code == 400, response.content
    (refusal,) = response.json()["file"]
    assert refusal.startswith(f"could not load the archive's model: {PREFIX}{message}")
    assert list(ModelRecord.objects.values_list("pk", flat=True)) == [trained_model.pk]
    assert sorted(_stored(settings)) == before


def test_a_manifest_that_is_not_an_object_gets_a_400(api, other_api, trained_model):
    archive = _download(api, trained_model)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, b"[]" if info.filename.endswith("/distillery.json") else src.read(info))
    response = _post(other_api, out.getvalue())
    assert response.status_code == 400
    message = "could not load the archive's model: distillery.json must be a JSON object, got list"
    assert response.json()["file"] == [message]
    assert ModelRecord.objects.count() == 1


def test_an_untampered_download_still_imports_with_its_manifest(api, other_api, trained_model):
    archive = _tampered(_download(api, trained_model), lambda manifest: None)  # rewritten, unchanged

    response = _post(other_api, archive)

    assert response.status_code == 201, response.content
    record = ModelRecord.objects.get(pk=response.json()["id"])
    assert record.label_names == ["negative", "positive"]
    assert record.params["max_length"] == 32 and record.metrics["test/report"]["confusion_matrix"] == [[8, 0], [0, 8]]


def test_a_plain_hf_folder_whose_id2label_repeats_a_name_gets_a_400(api, tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config["id2label"] = {"0": "same", "1": "same"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path in tiny_model_dir.iterdir():
            if path.is_file() and path.name != "distillery.json":
                data = json.dumps(config).encode() if path.name == "config.json" else path.read_bytes()
                zf.writestr(path.name, data)
    response = _post(api, out.getvalue())
    assert response.status_code == 400
    message = "could not load the archive's model: config.json's id2label names 'same' more than once"
    assert response.json()["file"] == [message]
    assert ModelRecord.objects.count() == 0


@pytest.mark.parametrize(
    ("metrics", "label_names", "params"),
    [
        ({"test/accuracy": "high"}, ["negative", "positive"], {"max_length": 32}),
        ({"test/accuracy": {"value": 0.9}}, [0, 1], ["max_length"]),
        ({"test/accuracy": 10**400}, "np", {}),
        (["test/accuracy", 0.9], {}, "max_length=32"),
    ],
)
def test_a_record_with_bad_values_from_before_the_check_still_downloads(api, user, metrics, label_names, params):
    record = ModelRecord.objects.create(
        owner=user, name="old-import", kind=ModelRecord.Kind.IMPORTED, params=params, metrics=metrics,
        label_names=label_names, num_parameters=1, size_bytes=0, artifact_files=[],
    )  # fmt: skip

    response = api.get(f"/api/models/{record.pk}/download/")

    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        readme = archive.read(f"old-import-{record.pk}/README.md").decode()
    assert "- test accuracy: -" in readme
