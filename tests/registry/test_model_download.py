"""A model downloads as a zip of its folder, streamed from storage, that plain transformers loads and that
answers as Distillery's classify does; only those who may see the model get it."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from django.core.files.storage import default_storage

from jobs.serving import engines

pytestmark = pytest.mark.django_db

TEXTS = ["great good film", "awful bad movie, boring"]


def _archive(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.content
    assert response.streaming  # written as it is sent, never whole in memory or on disk
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_zip_holds_the_stored_folder_byte_for_byte_and_a_readme(api, trained_model):
    response = api.get(f"/api/models/{trained_model.pk}/download/")
    archive = _archive(response)
    folder = f"{trained_model.name}-{trained_model.pk}"
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{folder}.zip"'
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted(
        [f"{folder}/README.md", *(f"{folder}/{name}" for name in trained_model.artifact_files)]
    )
    for name in trained_model.artifact_files:
        with default_storage.open(f"{trained_model.artifact_prefix}/{name}", "rb") as stored:
            assert archive.read(f"{folder}/{name}") == stored.read(), name
    weights = archive.getinfo(f"{folder}/model.safetensors")
    assert weights.compress_type == zipfile.ZIP_STORED  # float tensors are not worth deflating
    assert archive.getinfo(f"{folder}/config.json").compress_type == zipfile.ZIP_DEFLATED
    readme = archive.read(f"{folder}/README.md").decode()
    assert "labels: negative, positive" in readme and "max_length 32" in readme
    assert f'model="{folder}"' in readme


def test_the_unzipped_folder_loads_in_plain_transformers_and_answers_like_classify(api, trained_model, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _archive(api.get(f"/api/models/{trained_model.pk}/download/")).extractall(tmp_path)
    folder = tmp_path / f"{trained_model.name}-{trained_model.pk}"
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch = tokenizer(TEXTS, truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.inference_mode():
        probs = model(**batch).logits.softmax(-1)
    labels = [model.config.id2label[i] for i in range(probs.shape[1])]
    assert labels == trained_model.label_names

    served = engines.engine_for(trained_model).predict(TEXTS)
    for row, prediction in zip(probs.tolist(), served, strict=True):
        assert prediction.probabilities == pytest.approx(dict(zip(labels, row, strict=True)), abs=1e-4)
    assert [labels[i] for i in probs.argmax(-1).tolist()] == [p.label for p in served]


def test_the_model_page_downloads_the_same_zip(client, user, api, trained_model):
    client.force_login(user)
    page = client.get(f"/models/{trained_model.pk}/")
    assert f'href="/models/{trained_model.pk}/download/"'.encode() in page.content
    web = b"".join(client.get(f"/models/{trained_model.pk}/download/").streaming_content)
    assert web == b"".join(api.get(f"/api/models/{trained_model.pk}/download/").streaming_content)


def test_another_user_and_anonymous_callers_get_no_zip(client, other_api, other_user, trained_model):
    assert other_api.get(f"/api/models/{trained_model.pk}/download/").status_code == 404
    assert other_api.get("/api/models/999999/download/").status_code == 404
    assert client.get(f"/api/models/{trained_model.pk}/download/").status_code in (401, 403)
    client.force_login(other_user)
    assert client.get(f"/models/{trained_model.pk}/download/").status_code == 404


def test_zip_chunks_streams_large_files_in_bounded_chunks():
    import os

    from mlcore.artifacts import zip_chunks

    weights, text = os.urandom(600_000), b'{"label": "positive"}\n' * 2000
    entries = [("m/model.safetensors", lambda: io.BytesIO(weights), len(weights)),
               ("m/rows.jsonl", lambda: io.BytesIO(text), len(text))]  # fmt: skip
    chunks = list(zip_chunks(entries, chunk_size=64 * 1024))
    assert len(chunks) > 9 and max(map(len, chunks)) < 64 * 1024 + 1024
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read("m/model.safetensors") == weights and archive.read("m/rows.jsonl") == text
    assert archive.getinfo("m/rows.jsonl").compress_size < len(text) / 10
    assert b"".join(zip_chunks(entries)) == b"".join(chunks)  # reproducible: same files, same bytes


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_zip_goes_out_chunk_by_chunk_not_read_whole_first(user, api, trained_model):
    import asyncio
    import warnings

    from django.test import AsyncClient

    async def download():
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(f"/models/{trained_model.pk}/download/")
        return response, [chunk async for chunk in response.streaming_content]

    with warnings.catch_warnings():
        # Django warns, then reads a sync iterator whole, when it has to serve one under ASGI.
        warnings.filterwarnings("error", message="StreamingHttpResponse must consume synchronous iterators")
        response, chunks = asyncio.run(download())

    assert response.status_code == 200 and response.is_async
    assert len(chunks) > len(trained_model.artifact_files)  # at least one chunk per file, as they are written
    assert b"".join(chunks) == b"".join(api.get(f"/api/models/{trained_model.pk}/download/").streaming_content)
