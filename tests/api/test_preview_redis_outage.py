"""A dataset's preview while Redis, which keeps previews and says which web process is making one, cannot be
reached: the API and the dataset page still answer it, made again in a helper process (jobs.datasets.preview),
and once Redis is back it is kept again. Redis is the test's own, killed with SIGKILL (tests/api/conftest.py)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import preview
from jobs.datasets import services as dataset_services
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db

ROWS = [("a great film", "pos"), ("a dull and far too long film", "neg"), ("fine", "pos")]


def test_the_preview_is_answered_while_redis_is_down_and_kept_once_it_is_back(api, client, user, own_redis):
    dataset = dataset_services.create_dataset(user, "short", SimpleUploadedFile("short.csv", csv_bytes(ROWS)))
    client.force_login(user)
    own_redis.kill()

    response = api.get(f"/api/datasets/{dataset.pk}/preview/", {"max_length": 16})
    assert response.status_code == 200, response.content
    assert response.json()["tokens"]["sampled"] == 3 and response.json()["num_rows"] == 3
    page = client.get(f"/datasets/{dataset.pk}/", {"max_length": 16})
    assert page.status_code == 200
    assert 'id="token-histogram"' in page.content.decode() and "data-pending" not in page.content.decode()

    own_redis.start()
    assert api.get(f"/api/datasets/{dataset.pk}/preview/", {"max_length": 16}).json() == response.json()
    assert cache.get(preview._key(dataset, "all-MiniLM-L6-v2", 16))["tokens"] == response.json()["tokens"]
