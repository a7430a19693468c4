"""A large file goes to the bucket in parts and comes back through a temporary file, never whole in memory."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc

import pytest
from django.core.files import File
from django.core.files.storage import default_storage

SIZE = 128 * 2**20  # sixteen 8 MB parts (the multipart threshold and part size in config.settings.s3_storage)
# At most 4 parts in memory at once, each with its copies on the way out (about 15 MB measured): a bound that
# does not grow with the file, well under the file's own size.
BOUND = 80 * 2**20  # reading back: about 22 MB measured, held under 40 MB below


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "model.safetensors"
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        for _ in range(SIZE // 2**20):
            block = os.urandom(2**20)
            digest.update(block)
            fh.write(block)
    return path, digest.hexdigest()


def test_a_large_file_is_uploaded_in_parts_with_bounded_memory(s3, big_file):
    path, digest = big_file
    tracemalloc.start()
    try:
        with path.open("rb") as fh:
            name = default_storage.save("models/big/model.safetensors", File(fh))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    head = s3.meta.client.head_object(Bucket=s3.name, Key=name)
    assert head["ContentLength"] == SIZE
    assert head["ETag"].strip('"').endswith("-16")  # S3's mark of a multipart upload: sixteen parts
    assert peak < BOUND, f"{peak / 2**20:.0f} MB held while uploading {SIZE / 2**20:.0f} MB"

    tracemalloc.start()
    try:
        read = hashlib.sha256()
        with default_storage.open(name, "rb") as fh:
            while block := fh.read(2**20):
                read.update(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read.hexdigest() == digest
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MB held while downloading {SIZE / 2**20:.0f} MB"


def test_a_small_file_is_uploaded_in_one_request(s3):
    name = default_storage.save("small/config.json", File(io.BytesIO(b'{"a": 1}'), name="config.json"))
    assert "-" not in s3.meta.client.head_object(Bucket=s3.name, Key=name)["ETag"]
