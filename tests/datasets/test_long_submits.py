"""The dashboard's long submits (upload, folder, hub and model import; a file to classify) say they are running
(static/js/busy.js reads data-busy; tests/browser/test_long_submits.py watches it), and a Hub import on a server
that cannot reach the Hub is refused at once, on its form."""

from __future__ import annotations

import re
import socket
import time

import pytest

from jobs.models import Dataset
from jobs.registry import services as registry

pytestmark = pytest.mark.django_db


def _busy_texts(html: str) -> dict[str, str]:
    """{form action: its data-busy text} for the page's forms."""
    forms = re.findall(r"<form\b[^>]*>", html)
    return {
        re.search(r'action="([^"]+)"', tag)[1]: (re.search(r'data-busy="([^"]+)"', tag) or [None, ""])[1]
        for tag in forms
        if "action=" in tag
    }


def test_every_long_submit_says_it_is_running(logged_in, monkeypatch, settings, tmp_path, trained_model):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for label in ("pos", "neg"):
        (tmp_path / "roots" / "imdb" / "train" / label).mkdir(parents=True)
        (tmp_path / "roots" / "imdb" / "train" / label / "0_1.txt").write_text(f"a {label} review")
    settings.DISTILLERY_DATASET_ROOTS = [(tmp_path / "roots").resolve()]
    busy = _busy_texts(logged_in.get("/").content.decode())
    assert {a: busy[a] for a in ("/datasets/upload/", "/datasets/import/", "/datasets/hub/", "/models/import/")} == {
        "/datasets/upload/": "Uploading…", "/datasets/import/": "Importing…", "/datasets/hub/": "Importing…",
        "/models/import/": "Importing…",
    }  # fmt: skip
    assert busy["/jobs/new/"] == ""  # a launch answers at once
    registry.promote(trained_model)
    assert _busy_texts(logged_in.get("/classify/").content.decode())["/classify/file/"] == "Uploading…"


def test_a_hub_import_without_the_hub_is_refused_at_once_on_its_form(logged_in, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once it is closed
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    started = time.monotonic()
    response = logged_in.post("/datasets/hub/", {"hub_id": "stanfordnlp/imdb", "split": "train"})
    assert time.monotonic() - started < 2
    html = response.content.decode()
    assert response.status_code == 400 and Dataset.objects.count() == 0
    field = re.search(r'<label for="hub-hub_id">.*?</div>', html, re.S).group()
    assert (
        "could not load the dataset &#x27;stanfordnlp/imdb&#x27;: the Hugging Face Hub cannot be reached from this "
        f"server (127.0.0.1:{port}: Connection refused)"
    ) in field
