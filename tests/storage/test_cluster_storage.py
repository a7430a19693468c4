"""What a cluster in compose needs from object storage: the migrate step creates the bucket (ensure_bucket), and a
download link is signed for the endpoint clients reach (DISTILLERY_S3_PUBLIC_ENDPOINT_URL), not the internal one."""

from __future__ import annotations

import io
import urllib.request
import uuid
from urllib.parse import urlsplit

import boto3
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from config.settings import s3_storage
from jobs import files

pytestmark = pytest.mark.django_db


def test_ensure_bucket_creates_a_missing_bucket_once(s3_server, settings):
    name = f"fresh-{uuid.uuid4().hex[:12]}"
    settings.DISTILLERY_S3_BUCKET, settings.DISTILLERY_S3_REGION = name, "us-east-1"
    settings.STORAGES = {**django_settings.STORAGES, "default": s3_storage(name, s3_server, "us-east-1")}
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    assert name not in {b["Name"] for b in client.list_buckets()["Buckets"]}
    out = io.StringIO()
    call_command("ensure_bucket", stdout=out)
    assert f"created bucket {name}" in out.getvalue()
    assert name in {b["Name"] for b in client.list_buckets()["Buckets"]}
    out = io.StringIO()
    call_command("ensure_bucket", stdout=out)  # the next start: nothing to do
    assert out.getvalue().strip() == f"bucket {name} exists"
    client.delete_bucket(Bucket=name)


def test_ensure_bucket_does_nothing_on_the_filesystem(settings):
    settings.DISTILLERY_S3_BUCKET = ""
    out = io.StringIO()
    call_command("ensure_bucket", stdout=out)
    assert "no bucket configured" in out.getvalue()


def test_a_presigned_link_names_the_public_endpoint_and_downloads_from_it(s3, s3_server, settings):
    stored = files.save_chunks("archives/m.zip", iter([b"PK-zip-bytes"]))
    assert urlsplit(files.presigned_url(stored, "m.zip")).netloc == urlsplit(s3_server).netloc  # no public one set
    # The same server under another name, as a browser outside the compose network reaches MinIO.
    public = s3_server.replace("127.0.0.1", "localhost")
    settings.STORAGES = {**settings.STORAGES, "downloads": s3_storage(s3.name, public, "us-east-1")}
    url = files.presigned_url(stored, "m.zip")
    assert urlsplit(url).netloc == urlsplit(public).netloc and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url) as fetched:
        assert fetched.read() == b"PK-zip-bytes"
        assert 'filename="m.zip"' in fetched.headers["Content-Disposition"]
