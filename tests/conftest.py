"""Shared fixtures: users and API clients, a tiny BERT on disk, datasets, and a real Celery worker."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.api import fastpath
from jobs.datasets import services as dataset_services
from jobs.registry import services as registry
from jobs.serving import engines
from jobs.training import lifecycle

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pass-123")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pass-123")


def _client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.token = token.key
    return client


@pytest.fixture
def logged_in(client, user):
    """The Django test client with `user` signed in, for the HTML pages."""
    client.force_login(user)
    return client


@pytest.fixture
def api(user) -> APIClient:
    return _client_for(user)


@pytest.fixture
def other_api(other_user) -> APIClient:
    return _client_for(other_user)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path_factory, request):
    """Each test stores files under its own MEDIA_ROOT, except the worker tests, which share it with the
    worker process (both read it from the same settings)."""
    if "celery_worker" not in request.fixturenames:
        settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


def _model_roots(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp().resolve() / "model-roots"


@pytest.fixture(autouse=True)
def _models_under_the_test_folders(settings, tmp_path_factory):
    """The base model the tests fine-tune (tiny_bert) lies in a folder of its own, which the operator's allow-list
    of model folders (DISTILLERY_MODEL_ROOTS) names, as an operator names theirs; stored models do not."""
    settings.DISTILLERY_MODEL_ROOTS = [_model_roots(tmp_path_factory)]


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A new channel layer for each test. Tests run consumers under asyncio.run, one event loop each, while
    channels-redis keeps per-channel asyncio locks on the layer object: a receive cancelled when one loop
    shuts down can leave that state behind, and a consumer on the next loop then stops getting live
    messages. The server runs one loop per process, so this is a test-only concern."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fresh_serving_engines():
    """Each test starts with no model loaded in this process (nor classify quota reserved), and leaves no
    engine thread behind."""
    yield

    engines.reset()
    fastpath.reset_leases()


@pytest.fixture(scope="session", autouse=True)
def _close_connections_of_the_sync_thread(django_db_setup):
    """Websocket tests run consumers under asyncio.run; their database_sync_to_async calls use asgiref's
    one shared sync thread, whose connections would otherwise keep the test database open at teardown."""
    yield
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    asyncio.run(sync_to_async(connections.close_all)())


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    from mlcore.testing import make_tiny_bert

    folder = _model_roots(tmp_path_factory) / "tiny-bert"
    folder.mkdir(parents=True, exist_ok=True)
    return make_tiny_bert(folder)


def csv_bytes(rows, header=("text", "label"), delimiter=",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def sentiment_csv() -> SimpleUploadedFile:
    from mlcore.testing import sentiment_rows

    return SimpleUploadedFile("reviews.csv", csv_bytes(sentiment_rows(160)), content_type="text/csv")


FAST_PARAMS = {
    "batch_size": 16,
    "learning_rate": 3e-3,
    "epochs": 5,
    "max_length": 32,
    "lr_step_every": 5,
}


@pytest.fixture
def fast_params() -> dict:
    """Hyperparameters that train the tiny BERT to a clear result in seconds."""
    return dict(FAST_PARAMS)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_bert, tmp_path_factory) -> Path:
    """A tiny BERT fine-tuned once per session by mlcore (no Django), reused by serving and API tests."""
    from mlcore.config import TrainConfig
    from mlcore.data import TextDataset
    from mlcore.testing import sentiment_rows
    from mlcore.train import finetune

    rows = sentiment_rows(160)
    names = sorted({label for _, label in rows})
    data = TextDataset([t for t, _ in rows], [names.index(label) for _, label in rows], names)
    output = tmp_path_factory.mktemp("tiny-model")
    finetune(data, str(tiny_bert), output, TrainConfig(**FAST_PARAMS))
    return output


@pytest.fixture
def trained_model(user, tiny_bert, tiny_model_dir):
    """A model record of the session's tiny fine-tuned model, owned by `user`, stored through storage."""
    from jobs.models import Job
    from mlcore.testing import sentiment_rows
    from mlcore.train import TrainResult

    upload = SimpleUploadedFile("reviews.csv", csv_bytes(sentiment_rows(160)))
    dataset = dataset_services.create_dataset(user, "reviews", upload)
    job = Job.objects.create(
        owner=user, kind=Job.Kind.FINETUNE, dataset=dataset, base_model=str(tiny_bert), params=FAST_PARAMS,
        status=Job.Status.RUNNING,
    )
    meta = json.loads((tiny_model_dir / "distillery.json").read_text())
    result = TrainResult(
        output_dir=tiny_model_dir, label_names=meta["label_names"], metrics={"test/accuracy": 1.0},
        num_parameters=1, size_bytes=1, steps=1, train_rows=1,
    )
    record = registry.register_model(job, result)
    lifecycle.finish_job(job, Job.Status.SUCCEEDED, result_model=record)
    return record


def launch_finetune(api, upload, base_model, params: dict) -> dict:
    """Upload a dataset and launch a fine-tune on it through the API; the created job's JSON."""
    dataset = api.post("/api/datasets/", {"file": upload}, format="multipart").json()
    payload = {"kind": "finetune", "dataset": dataset["id"], "base_model": str(base_model), "params": params}
    response = api.post("/api/jobs/", payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def job_socket(job_id: int, token: str, *, after: int | None = None):
    """A websocket client for /ws/jobs/{id}/ through the real ASGI app, authenticated by token."""
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    query = f"?token={token}" + (f"&after={after}" if after is not None else "")
    return WebsocketCommunicator(application, f"/ws/jobs/{job_id}/{query}", headers=[(b"origin", b"http://testserver")])


async def watch_job(job_id: int, token: str, *, after: int | None = None, timeout: float = 300) -> list[dict]:
    """Collect a job's websocket messages until it reports a finished status."""
    from jobs.models import Job

    communicator = job_socket(job_id, token, after=after)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    messages = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await communicator.receive_json_from(timeout=60)
                messages.append(message)
                if message["type"] == "status" and message["status"] in Job.FINISHED:
                    return messages
    finally:
        await communicator.disconnect()


# --- a real Celery worker process ------------------------------------------------------------------


def _worker_database_url() -> str:
    """The URL of the test database pytest-django created, for the worker process."""
    from django.db import connection

    settings_dict = connection.settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    url = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(url._replace(path="/" + settings_dict["NAME"]))


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """Start a `celery worker` on every queue against the test database and the test Redis; stop it after."""
    from config.celery import app

    with django_db_blocker.unblock():
        database_url = _worker_database_url()
    app.control.purge()
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with worker_process(f"test-{os.getpid()}@distillery", database_url, log_path) as proc:
        yield proc


@contextlib.contextmanager
def worker_process(name: str, database_url: str, log_path: Path, consume: tuple[str, ...] = (), **env: str):
    """A real `celery worker` named `name` on every queue (or those of `consume`; one pool process) against the
    test database and Redis, with `env` added to its environment; answering control pings when the block starts,
    stopped after."""
    from config import queues
    from config.celery import app

    # The tests' webhook receivers listen on loopback, as an on-premises one would; the refusal of such
    # addresses by default is pinned in-process (tests/training/test_webhook_targets.py).
    env = dict(
        os.environ, DATABASE_URL=database_url, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
        DISTILLERY_SPEED_SECONDS="1", DISTILLERY_WEBHOOK_ALLOW_PRIVATE="true", **env,
    )  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(consume or queues.ALL),
             "--concurrency", "1", "--pool", "prefork", "--loglevel", "INFO", "-n", name, "--without-gossip",
             "--without-mingle"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    proc.log_path = log_path
    try:
        _wait_for_worker(app, name, proc, log_path)
        yield proc
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else ():
            with contextlib.suppress(psutil.NoSuchProcess):
                child.resume()  # a pool process a test paused must be able to hear the stop
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if os.environ.get("CI"):
            sys.stderr.write(log_path.read_text()[-4000:])


def _wait_for_worker(app, name: str, proc: subprocess.Popen, log_path: Path, timeout: float = 90) -> None:
    """Block until the worker answers a control ping (each ping waits up to a second for replies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        if app.control.ping(destination=[name], timeout=1.0):
            return
    raise RuntimeError(f"the worker did not start in {timeout}s:\n{log_path.read_text()[-3000:]}")


# --- a real web server process ---------------------------------------------------------------------


class WebServer:
    """uvicorn serving config.asgi in a process of its own, on a socket the test opened (no port race), against
    the test database (tests that use it commit: django_db(transaction=True)) and the test Redis."""

    def __init__(self, media_root: Path, log_path: Path, **env: str):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        env = {
            **os.environ, "DATABASE_URL": _worker_database_url(), "MEDIA_ROOT": str(media_root), "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1", **env,
        }  # fmt: skip; `env` may set HF_HUB_OFFLINE too
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--fd", str(self.sock.fileno()), "--lifespan", "off",
                 "--no-access-log", "config.asgi:application"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=[self.sock.fileno()],
            )  # fmt: skip

    def wait_until_it_answers(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if self.get("/accounts/login/")[0] == 200:
                    return
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer in time"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, body) of one request on a connection of its own."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes]:
        return self.request("GET", path, headers=headers)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body holding one file, and its Content-Type."""
    boundary = "distillery-test-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n\r\n'
    return head.encode() + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def silent_port():
    """A local port that takes no more connections and never refuses one: a listener whose backlog is full, as a
    firewall that drops packets looks to a client."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port, held = server.getsockname()[1], []
    while True:  # connect until one waits: the backlog is full
        client = socket.socket()
        client.settimeout(0.2)
        held.append(client)
        try:
            client.connect(("127.0.0.1", port))
        except TimeoutError:
            break
    yield port
    for client in held:
        client.close()
    server.close()


@pytest.fixture
def web_server(tmp_path):
    """A running WebServer with a media folder of its own; stopped after the test."""
    served = WebServer(tmp_path / "media", tmp_path / "web.log")
    try:
        served.wait_until_it_answers()
        yield served
    finally:
        served.stop()
