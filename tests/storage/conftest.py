"""A real S3-compatible server for the storage tests: moto's standalone server in its own process on a free
loopback port, one per session, and a fixture that makes it the default storage for one test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import boto3
import pytest
from django.conf import settings as django_settings

from config.settings import s3_storage

BUCKET = "distillery-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Return once the server accepts connections (each try is a real connect, not a guessed delay)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # between connection attempts only
    raise TimeoutError(f"moto_server did not listen on {port} in {timeout}s")


@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of a moto S3 server in a process of its own (so its memory is not this process's),
    with credentials in the environment that boto3 reads, as it would read real ones."""
    saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, proc)
        url = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def bucket(s3_server):
    """The test bucket as a boto3 Bucket, emptied after the test."""
    resource = boto3.resource("s3", endpoint_url=s3_server, region_name="us-east-1").Bucket(BUCKET)
    yield resource
    resource.objects.all().delete()


@pytest.fixture
def s3(settings, bucket, s3_server, tmp_path):
    """The default storage is the S3 bucket for this test (pytest-django restores STORAGES after it, and
    Django's setting_changed handler drops the cached default_storage both times)."""
    storages = dict(django_settings.STORAGES)
    storages["default"] = s3_storage(BUCKET, s3_server, "us-east-1")
    settings.STORAGES = storages
    settings.DISTILLERY_MODEL_CACHE = tmp_path / "model-cache"
    return bucket
