"""The web process's start-up heap is frozen out of the garbage collector's full collections (config/asgi.py), so
the full collection a model load makes (jobs/serving/engines._freeze_heap) walks only what came after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import gc, json
import config.asgi
print(json.dumps({"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}))
"""


def test_starting_the_web_app_freezes_what_start_up_built():
    """A fresh interpreter loads the ASGI app as uvicorn does; what it imported sits in the permanent generation,
    so a full collection afterwards (a model load's, with requests in flight) walks a small fraction of the heap."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings")
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=True
    ).stdout
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["frozen"] > 100_000  # Django, torch and transformers' objects
    assert counts["tracked"] < counts["frozen"] / 20
