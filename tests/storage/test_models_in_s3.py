"""A model's files are objects in the bucket: a worker copies them into its cache once, a download redirects to
a presigned URL of a zip stored once, and deleting the model removes every object."""

from __future__ import annotations

import io
import urllib.request
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest

from jobs.registry import services as registry
from jobs.registry.storage import local_copy_dir, model_dir

pytestmark = pytest.mark.django_db


def _keys(bucket, prefix: str) -> set[str]:
    return {o.key for o in bucket.objects.filter(Prefix=prefix)}


def test_a_registered_models_files_are_objects_in_the_bucket(s3, trained_model, tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir() if p.is_file()}
    assert set(trained_model.artifact_files) == names
    assert _keys(s3, trained_model.artifact_prefix + "/") == {f"{trained_model.artifact_prefix}/{n}" for n in names}
    weights = s3.Object(f"{trained_model.artifact_prefix}/model.safetensors").get()["Body"].read()
    assert weights == (tiny_model_dir / "model.safetensors").read_bytes()


def test_model_dir_copies_the_files_into_the_cache_once(s3, trained_model, tiny_model_dir, settings):
    folder = model_dir(trained_model)
    assert folder == local_copy_dir(trained_model)
    assert str(folder).startswith(str(settings.DISTILLERY_MODEL_CACHE))
    for name in trained_model.artifact_files:
        assert (folder / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
    # The second call reads nothing from the bucket: with the objects gone it still answers the same copy.
    s3.objects.filter(Prefix=trained_model.artifact_prefix + "/").delete()
    assert model_dir(trained_model) == folder
    assert (folder / "model.safetensors").read_bytes() == (tiny_model_dir / "model.safetensors").read_bytes()


def test_a_download_redirects_to_a_presigned_url_of_a_zip_stored_once(s3, api, trained_model, s3_server):
    response = api.get(f"/api/models/{trained_model.pk}/download/")
    assert response.status_code == 302
    url = response["Location"]
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}" == s3_server
    assert query["X-Amz-Expires"] == ["300"] and "X-Amz-Signature" in query
    folder = f"{trained_model.name}-{trained_model.pk}"
    assert query["response-content-disposition"] == [f'attachment; filename="{folder}.zip"']

    with urllib.request.urlopen(url) as fetched:  # what the client does with the redirect: no credentials
        archive = zipfile.ZipFile(io.BytesIO(fetched.read()))
    assert archive.testzip() is None
    for name in trained_model.artifact_files:
        stored = s3.Object(f"{trained_model.artifact_prefix}/{name}").get()["Body"].read()
        assert archive.read(f"{folder}/{name}") == stored, name
    assert f"{folder}/README.md" in archive.namelist()

    zips = _keys(s3, f"{trained_model.artifact_prefix}/archives/")
    assert len(zips) == 1 and urlsplit(url).path.endswith(next(iter(zips)))
    again = api.get(f"/api/models/{trained_model.pk}/download/")
    assert urlsplit(again["Location"]).path == parts.path  # the same zip, not built again
    assert _keys(s3, f"{trained_model.artifact_prefix}/archives/") == zips


def test_on_the_filesystem_the_download_still_streams(api, trained_model):
    response = api.get(f"/api/models/{trained_model.pk}/download/")
    assert response.status_code == 200 and response.streaming
    assert zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).testzip() is None


def test_deleting_a_model_removes_its_objects_and_stored_zip(
    s3, api, trained_model, django_capture_on_commit_callbacks
):
    api.get(f"/api/models/{trained_model.pk}/download/")
    model_dir(trained_model)
    prefix = trained_model.artifact_prefix + "/"
    assert len(_keys(s3, prefix)) == len(trained_model.artifact_files) + 1  # the files and the zip
    with django_capture_on_commit_callbacks(execute=True):
        registry.delete_model(trained_model)
    assert _keys(s3, prefix) == set()
    assert not local_copy_dir(trained_model).exists()


def test_the_model_pages_download_redirects_too(s3, logged_in, trained_model):
    response = logged_in.get(f"/models/{trained_model.pk}/download/")
    assert response.status_code == 302
    assert "X-Amz-Signature=" in response["Location"]
    assert urlsplit(response["Location"]).path.startswith(f"/{s3.name}/{trained_model.artifact_prefix}/archives/")
