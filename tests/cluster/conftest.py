"""The platform started as a cluster across Linux network namespaces (tests/cluster/netns.py): PostgreSQL (a
private cluster made with initdb), Redis, moto's S3 server, the web process (uvicorn, as `platform/embedded.py
serve` runs it) and a cpu worker running Celery beat in the core namespace; a gpu worker in each of two host
namespaces. Each process gets its own DISTILLERY_VAR_DIR and MEDIA_ROOT, and reaches the others only by the URLs in
its environment: nothing is shared but the database, Redis and the bucket (and the installed code and base model,
as on any host)."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import boto3
import pytest
from celery import Celery

from tests.cluster import netns
from tests.conftest import REPO, multipart

BUCKET = "distillery-cluster"
PASSWORD = "cluster-pass-123"
# Short enough for a bounded test: a heartbeat a second, presumed gone after 6 s of silence, reaped every second.
LIVENESS = {"DISTILLERY_HEARTBEAT_SECONDS": "1", "DISTILLERY_STALE_AFTER": "6", "DISTILLERY_REAP_SECONDS": "1"}


class Site:
    """The running cluster as its users and operator see it: the web process's API, and the bucket."""

    def __init__(self, cluster: netns.Cluster, workers: dict[str, str]):
        self.cluster = cluster
        self.workers = workers  # host -> the Celery name of its worker
        self.token = ""
        self.control = Celery("cluster-observer", broker=f"redis://127.0.0.1:{netns.PORTS['redis']}/0")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, JSON or bytes) of one request to the web process, on a connection opened in the core."""
        headers = {"Authorization": f"Token {self.token}", **(headers or {})} if self.token else headers or {}
        with netns.inside(self.cluster.core):
            conn = http.client.HTTPConnection("127.0.0.1", netns.PORTS["web"], timeout=60)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            finally:
                conn.close()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(data) if is_json else data

    def post_json(self, path: str, payload: dict) -> dict:
        status, body = self.request("POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        assert status in (200, 201), (status, body)
        return body

    def upload(self, name: str, content: bytes) -> dict:
        body, content_type = multipart("file", name, content)
        status, answer = self.request("POST", "/api/datasets/", body, {"Content-Type": content_type})
        assert status == 201, (status, answer)
        return answer

    def job(self, job_id: int) -> dict:
        status, body = self.request("GET", f"/api/jobs/{job_id}/")
        assert status == 200, (status, body)
        return body

    def active(self, worker: str) -> dict | None:
        """What `worker` is running, as `celery inspect active` answers through the cluster's Redis (None: no
        answer within a second)."""
        with netns.inside(self.cluster.core):  # the broker connection is made here, in the core
            return self.control.control.inspect([worker], timeout=1).active()

    def stored(self, prefix: str) -> list[str]:
        """The keys under `prefix` in the bucket, asked of the S3 server in the core."""
        with netns.inside(self.cluster.core):
            listed = _s3().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))


def _s3():
    """A client of the S3 server, for a thread inside the core namespace (its sockets open on first use)."""
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{netns.PORTS['s3']}", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def _environment(cluster: netns.Cluster, host: str | None, name: str, secret_key: str, model_roots: Path) -> dict:
    """All a process of the cluster is told: where the database, Redis and the bucket are as seen from its host,
    the shared secret key, and folders of its own."""
    core = cluster.core_address(host)
    var = cluster.base / name
    (var / "tmp").mkdir(parents=True)
    return {
        "PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(var), "TMPDIR": str(var / "tmp"),
        "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
        "DATABASE_URL": f"postgres://postgres@{core}:{netns.PORTS['postgres']}/postgres",
        "REDIS_URL": f"redis://{core}:{netns.PORTS['redis']}/0",
        "DISTILLERY_S3_BUCKET": BUCKET, "DISTILLERY_S3_ENDPOINT_URL": f"http://{core}:{netns.PORTS['s3']}",
        "DISTILLERY_S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "SECRET_KEY": secret_key,
        "DISTILLERY_VAR_DIR": str(var), "MEDIA_ROOT": str(var / "media"), "HF_HOME": str(var / "hf"),
        "HF_HUB_OFFLINE": "1", "DISTILLERY_MODEL_ROOTS": str(model_roots), "DISTILLERY_SPEED_SECONDS": "1",
        **LIVENESS,
    }  # fmt: skip


def _start_postgres(cluster: netns.Cluster, folder: Path) -> None:
    """A PostgreSQL cluster of the test's own, made by initdb as the postgres user, listening in the core."""
    binaries = netns.postgres_bin()
    shutil.chown(folder, "postgres", "postgres")
    initdb = [str(binaries / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]
    done = cluster.spawn("initdb", cluster.core, initdb, {"PATH": os.environ["PATH"]}, user="postgres", cwd=folder)
    assert done.wait(timeout=120) == 0, cluster.tail("initdb")
    with open(folder / "data" / "pg_hba.conf", "a") as hba:
        hba.write("host all all 10.250.0.0/16 trust\n")  # the hosts' links to the core
    cluster.spawn(
        "postgres", cluster.core,
        [str(binaries / "postgres"), "-D", str(folder / "data"), "-c", "listen_addresses=*",
         "-p", str(netns.PORTS["postgres"]), "-k", str(folder), "-c", "fsync=off", "-c", "synchronous_commit=off"],
        {"PATH": os.environ["PATH"]}, user="postgres", cwd=folder,
    )  # fmt: skip


def _wait_for_web(site: Site, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert site.cluster.procs["web"].poll() is None, site.cluster.tail("web")
        try:
            if site.request("GET", "/accounts/login/")[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the web process did not answer in time:\n" + site.cluster.tail("web")
        time.sleep(0.1)  # between attempts only


@pytest.fixture
def cluster_site(tiny_bert, tmp_path):
    """The whole platform across three namespaces, a user's API token in hand; everything undone after."""
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"the cross-host tests {reason}")
    cluster = netns.Cluster(tmp_path)
    pg_folder = Path(tempfile.mkdtemp(prefix=f"{cluster.tag}-pg-"))  # the postgres user must reach it
    py, secret_key, model_roots = sys.executable, secrets.token_urlsafe(40), tiny_bert.parent
    try:
        cluster.build()
        core_env = _environment(cluster, None, "core", secret_key, model_roots)
        _start_postgres(cluster, pg_folder)
        redis = [shutil.which("redis-server") or "redis-server", "--bind", "0.0.0.0",
                 "--port", str(netns.PORTS["redis"]), "--save", "", "--appendonly", "no", "--protected-mode", "no",
                 "--dir", str(tmp_path)]  # fmt: skip
        cluster.spawn("redis", cluster.core, redis, core_env)
        cluster.spawn("s3", cluster.core, [py, "-m", "moto.server", "-H", "0.0.0.0", "-p", str(netns.PORTS["s3"])],
                      core_env)  # fmt: skip
        for name in ("postgres", "redis", "s3"):
            cluster.wait_for_port(name, netns.PORTS[name])
        with netns.inside(cluster.core):
            _s3().create_bucket(Bucket=BUCKET)
        for step in (["migrate", "--noinput"], ["ensure_admin"]):
            env = dict(core_env, DISTILLERY_ADMIN_USER="operator", DISTILLERY_ADMIN_PASSWORD=PASSWORD)
            done = cluster.spawn(step[0], cluster.core, [py, "manage.py", *step], env, cwd=REPO)
            assert done.wait(timeout=180) == 0, cluster.tail(step[0])

        celery = [py, "-m", "celery", "-A", "config", "worker", "--concurrency", "1", "--loglevel", "INFO",
                  "--without-gossip", "--without-mingle"]  # fmt: skip
        workers = {host: f"gpu@{cluster.hostname(host)}" for host in netns.SUBNETS}  # as `-n gpu@%h` names them
        for host in workers:
            env = _environment(cluster, host, f"host-{host}", secret_key, model_roots)
            worker = [*celery, "-Q", "gpu", "-n", "gpu@%h"]
            cluster.spawn(f"worker-{host}", cluster.hosts[host], worker, env, hostname=cluster.hostname(host), cwd=REPO)
        beat = ["--beat", "--schedule", str(tmp_path / "core" / "celerybeat-schedule")]
        cluster.spawn("cpu-worker", cluster.core, [*celery, "-Q", "cpu", "-n", f"cpu@core-{cluster.tag}", *beat],
                      core_env, cwd=REPO)  # fmt: skip
        web = [py, "-m", "uvicorn", "--host", "0.0.0.0", "--port", str(netns.PORTS["web"]), "--lifespan", "off",
               "--no-access-log", "config.asgi:application"]  # fmt: skip
        cluster.spawn("web", cluster.core, web, core_env, cwd=REPO)

        site = Site(cluster, workers)
        _wait_for_web(site)
        site.token = site.post_json("/api/auth/token/", {"username": "operator", "password": PASSWORD})["token"]
        yield site
    finally:
        cluster.stop()
        shutil.rmtree(pg_folder, ignore_errors=True)
        if os.environ.get("CI"):
            for name in cluster.logs:
                sys.stderr.write(f"--- {name}\n{cluster.tail(name)}\n")
