"""Webhook receivers and a Hugging Face Hub (real HTTP servers on loopback), and a stand-in resolver, for the webhook
and launch tests; four GPUs' driver folder and nvidia-smi, for the worker tests."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlcore import hardware


class Receiver:
    """An HTTP server that records each request (any method) and answers with the next of `statuses` (then 200),
    sending `headers` with every answer."""

    def __init__(self, statuses=(), *, host: str = "127.0.0.1", port: int = 0):
        self.statuses, self.headers, self.requests, self.arrived = list(statuses), {}, [], threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                receiver.arrived.set()

            do_POST = do_GET = do_PUT = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_receiver():
    """Receiver(...) for as many servers as a test needs, all closed after it."""
    made = []

    def make(*args, **kwargs) -> Receiver:
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def receiver(make_receiver):
    return make_receiver()


class FakeDNS:
    """socket.getaddrinfo for the names a test gives (no DNS server runs here): each lookup of a name gets the
    next of its answers, the last one repeated; other names ending in .test do not resolve; everything else
    (literal addresses, localhost) goes to the real resolver."""

    def __init__(self, real):
        self.real, self.answers, self.lookups = real, {}, Counter()

    def add(self, name: str, *answers) -> None:
        """One answer per lookup: an address, or a tuple of addresses for a name with several."""
        self.answers[name] = [(a,) if isinstance(a, str) else tuple(a) for a in answers]

    def __call__(self, host, port, *args, **kwargs):
        if host not in self.answers:
            if isinstance(host, str) and host.endswith(".test"):
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return self.real(host, port, *args, **kwargs)
        self.lookups[host] += 1
        answers = self.answers[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


class FakeHub:
    """The Hugging Face Hub's model-info route on loopback (GET /api/models/<id>), as huggingface_hub reads it:
    200 with the model's info for `models`, 403 GatedRepo for `gated`, 404 RepoNotFound otherwise. Made the hub
    of this process (huggingface_hub's ENDPOINT), and the hub switched on (HF_HUB_OFFLINE=0)."""

    def __init__(self, models=(), gated=()):
        self.models, self.gated, self.asked = set(models), set(gated), []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                name = path.removeprefix("/api/models/").split("/revision/")[0]
                if path.startswith("/api/models/"):
                    hub.asked.append(name)
                if name in hub.models:
                    body = json.dumps({"id": name, "sha": "0" * 40, "private": False}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                elif name in hub.gated:
                    body = b'{"error": "gated"}'
                    self.send_response(403)
                    self.send_header("X-Error-Code", "GatedRepo")
                else:
                    body = b'{"error": "Repository not found"}'
                    self.send_response(404)
                    self.send_header("X-Error-Code", "RepoNotFound")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hub(monkeypatch):
    """A FakeHub with no models yet (add names to .models or .gated)."""
    from huggingface_hub import constants

    hub = FakeHub()
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    yield hub
    hub.close()


@pytest.fixture
def four_gpus(tmp_path, monkeypatch):
    """The driver's folder for four GPUs and an nvidia-smi that answers for them (no GPU can be here)."""
    driver = tmp_path / "driver"
    for bus in range(4):
        (driver / f"0000:0{bus + 1}:00.0").mkdir(parents=True)
    monkeypatch.setattr(hardware, "NVIDIA_GPUS", driver)
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    lines = ["0, GPU-aaaa, 81559", "1, GPU-bbbb, 81559", "2, GPU-cccc, 15360", "3, GPU-dddd, 24564"]
    smi.write_text("#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in lines))
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{smi.parent}{os.pathsep}{os.environ['PATH']}")
    return smi
