"""The whole platform as `make up` runs it, in a temporary folder, and a small client for its REST API.

`EmbeddedStack` starts `platform/embedded.py serve` (its embedded Redis, SQLite, migrations, a Celery worker
per queue, uvicorn) on a free port with DISTILLERY_VAR_DIR in a temporary folder, waits for /healthz, finds
the web server, the training worker, the cpu-queue worker (each with its pool processes) and Redis among the
launcher's children, and stops them all by stopping the launcher, as Ctrl-C would. The caller's environment
passes through (the launcher's own settings included), except what would point the stack at another database,
Redis or storage.

`Api` speaks JSON (and multipart for uploads) to it with an API token, over the standard library's http.client.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from bench import procstat

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 300.0  # seconds for migrations, collectstatic and the servers to answer /healthz (2 cores)
STOP_TIMEOUT = 30.0  # the launcher gives each child 10 s after SIGTERM; after this it is killed
ADMIN = "admin"  # the first account, which the launcher creates (manage.py ensure_admin)
QUEUES = runpy.run_path(str(REPO / "config" / "queues.py"))  # a plain file: no Django, no Celery app
ROLES = ("web", "training", "cpu-worker", "redis")
# Settings that would point the stack somewhere else than its own folder, SQLite and embedded Redis.
NOT_PASSED = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "MEDIA_ROOT",
    "DISTILLERY_MODEL_CACHE",
    "DISTILLERY_CHECKPOINT_DIR",
    "DISTILLERY_EMBEDDED_REDIS_PORT",
    "DISTILLERY_ADMIN_USER",
    "DISTILLERY_ADMIN_PASSWORD",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiError(Exception):
    """An answer with an unexpected status: the message carries the status and the body."""


class Api:
    """JSON over HTTP/1.1 to one server, one connection per call, with `Authorization: Token` once set."""

    def __init__(self, port: int, token: str = "", timeout: float = 60.0) -> None:
        self.port, self.token, self.timeout = port, token, timeout

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> Any:
        """The decoded JSON answer; ApiError when its status is not one of `expect`."""
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        conn = HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status not in expect:
            raise ApiError(f"{method} {path}: {response.status} {data[:2000].decode(errors='replace')}")
        return json.loads(data) if data else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, payload: dict[str, Any], expect: tuple[int, ...] = (200, 201)) -> Any:
        body = json.dumps(payload).encode()
        return self.request("POST", path, body, {"Content-Type": "application/json"}, expect)

    def upload(self, path: str, fields: dict[str, str], filename: str, content: bytes) -> Any:
        """POST a multipart form: `fields` and one file under the name `file`."""
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: text/csv\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.request("POST", path, body, headers, (201,))

    def login(self, username: str, password: str) -> str:
        """Fetch and keep the user's API token (POST /api/auth/token/)."""
        self.token = ""
        self.token = self.post("/api/auth/token/", {"username": username, "password": password})["token"]
        return self.token


def _role(argv: list[str]) -> str | None:
    """Which part of the stack a command line runs, or None."""
    line = " ".join(argv)
    if "uvicorn" in line:
        return "web"
    if "redis-server" in line:
        return "redis"
    if "celery" in line and "-Q" in argv[:-1]:
        queues = set(argv[argv.index("-Q") + 1].split(","))
        return "training" if QUEUES["GPU"] in queues else "cpu-worker" if QUEUES["CPU"] in queues else None
    return None


class EmbeddedStack:
    """`platform/embedded.py serve` in `workdir`; start() waits until it answers, stop() takes it down."""

    def __init__(self, workdir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.log = workdir / "stack.log"
        self.env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
        self.env.update(
            PYTHONUNBUFFERED="1",
            DISTILLERY_VAR_DIR=str(workdir / "var"),
            DISTILLERY_ADMIN_USER=ADMIN,
            DISTILLERY_ADMIN_PASSWORD=self.password,
        )
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.pids: dict[str, int] = {}

    def __enter__(self) -> EmbeddedStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> float:
        """Start the launcher and wait for /healthz; the seconds it took. Then find the web server, worker and
        Redis processes (`pids`)."""
        cmd = [sys.executable, str(REPO / "platform" / "embedded.py"), "serve", "--port", str(self.port)]
        started = time.perf_counter()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        while not self._healthy():
            if self.proc.poll() is not None or time.perf_counter() - started > START_TIMEOUT:
                tail = self.log_tail()
                self.stop()
                raise SystemExit(f"the stack did not come up on port {self.port}:\n{tail}")
            time.sleep(0.5)
        self.pids = self._roles()
        return time.perf_counter() - started

    def _healthy(self) -> bool:
        with contextlib.suppress(OSError, ApiError, ValueError):
            Api(self.port, timeout=5).get("/healthz")
            return True
        return False

    def _roles(self) -> dict[str, int]:
        """The launcher's children by what they run: web (uvicorn), training (the Celery worker on the training
        queue), cpu-worker (the one on the light queue), redis."""
        assert self.proc is not None
        roles: dict[str, int] = {}
        for pid in procstat.children(self.proc.pid):
            role = _role(procstat.cmdline(pid))
            if role is not None:
                roles.setdefault(role, pid)
        missing = {"web", "training"} - set(roles)
        if missing:
            raise SystemExit(f"the launcher's children include no {', '.join(sorted(missing))}:\n{self.log_tail()}")
        return roles

    def current_pids(self) -> dict[str, int]:
        """The roles' pids now: a child the launcher restarted has another pid."""
        return self._roles()

    def processes(self, role: str) -> list[int]:
        """The pids of a role: a worker with its pool processes, the others alone."""
        pid = self.pids.get(role)
        if pid is None:
            return []
        return procstat.tree(pid) if role in ("training", "cpu-worker") else [pid]

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def stop(self) -> None:
        """SIGTERM the launcher, which stops its children (as on Ctrl-C); kill it if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # its children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
            self.proc.wait()
