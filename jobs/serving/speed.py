"""Compare's re-measure: the CPU speed of several models measured here, where they serve, the same way for all.

A worker measures a new model's speed right after training, in PyTorch at fp32, on whatever CPU it has and while
other jobs may share it (a teacher once measured 540 ms for one text that it answered in 25 ms when served).
Those figures cannot be compared across models trained at different times or places. This measures every
compared model now, in this web process, on the serving runtime (engines.load_classifier, the serving threads),
at both precisions, on the same texts, in interleaved rounds (each round times every model and precision once,
so whatever else the machine does falls on all of them alike), and keeps the medians with how they were taken
on each record (ModelRecord.serving_speed).

Runs in: the web process.
"""

from __future__ import annotations

import logging
import socket
import statistics
import threading
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from mlcore.preview import first_texts

from .. import offload
from ..files import local_file, upload_limit_bytes
from ..models import ModelRecord
from ..registry.precision import serving_runtime
from .engines import load_classifier

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
BATCH = 32  # texts per request for the throughput figure (the worker's batch too)
TEXTS = 32  # texts every model is timed on
MIN_ROUNDS, MAX_ROUNDS = 3, 20  # rounds past the minimum stop once DISTILLERY_SPEED_SECONDS is spent

# Texts for models that have no dataset here (imported): film reviews of a few lengths.
FALLBACK_TEXTS = [
    "A wonderful film.",
    "The plot is thin, but the actors carry it and the last act lands.",
    "I wanted to like this more than I did. The first hour drags, the dialogue is stilted, and the score drowns "
    "out every quiet moment; only the photography, cold and beautiful, kept me in my seat until the end.",
    "An honest, funny and warm story about a family that refuses to give up on one another, told without a "
    "single false note. The child actors are remarkable, the writing trusts its audience, and the ending earned "
    "every tear it drew from the people around me. I will watch it again with my parents this weekend, and I "
    "expect to notice new things in it each time: it is that kind of film, generous and carefully made.",
]

_running = threading.Lock()  # one measurement at a time in this process: two would time each other


class Busy(Exception):
    """A measurement is already running in this process."""


def measure(records: list[ModelRecord]) -> dict[int, dict[str, Any]]:
    """Measure `records` together and save each one's figures on it (serving_speed); {record id: figures}.

    Raises Busy when another measurement runs here, ValidationError when there is nothing to time them on."""
    if not _running.acquire(blocking=False):
        raise Busy("a speed measurement is already running on this server; try again in a minute")
    try:
        texts, source = _texts(records)
        return _measure(records, texts, source)
    finally:
        _running.release()


def _texts(records: list[ModelRecord]) -> tuple[list[str], str]:
    """The texts to time every model on: the first TEXTS of the first model's dataset that has one (read in a
    helper process: a large file holds no request here), else FALLBACK_TEXTS; and where they came from."""
    dataset = next((r.dataset for r in records if r.dataset is not None), None)
    if dataset is not None:
        with local_file(dataset.file.name) as path:
            texts = offload.run(
                first_texts, str(path), format=dataset.format, text_column=dataset.text_column,
                label_column=dataset.label_column, max_bytes=upload_limit_bytes(), count=TEXTS,
            )  # fmt: skip
        if texts:
            return texts, f"the first {len(texts)} texts of {dataset.name}"
    if not FALLBACK_TEXTS:
        raise ValidationError("no texts to time the models on")
    return FALLBACK_TEXTS, f"{len(FALLBACK_TEXTS)} built-in film reviews of 4 to 120 words"


def _measure(records: list[ModelRecord], texts: list[str], source: str) -> dict[int, dict[str, Any]]:
    one = [texts[0]]
    batch = [texts[i % len(texts)] for i in range(BATCH)]
    classifiers: dict[tuple[int, str], Any] = {}
    errors: dict[tuple[int, str], str] = {}
    for record in records:
        for precision in PRECISIONS:
            try:
                classifier = load_classifier(record, precision)
                classifier.predict(one, batch_size=1)  # warm-up: first calls allocate and pick kernels
                classifier.predict(batch, batch_size=BATCH)
                classifiers[record.pk, precision] = classifier
            except Exception as exc:  # a model int8 cannot quantise still has its fp32 figures
                log.warning("model %s could not be timed at %s", record.pk, precision, exc_info=True)
                errors[record.pk, precision] = f"{type(exc).__name__}: {exc}"[:300]
    single: dict[tuple[int, str], list[float]] = {key: [] for key in classifiers}
    batched: dict[tuple[int, str], list[float]] = {key: [] for key in classifiers}
    began = time.perf_counter()
    rounds = 0
    while classifiers and rounds < MAX_ROUNDS:
        rounds += 1
        for key, classifier in classifiers.items():
            single[key].append(_timed(classifier, one, 1))
            batched[key].append(_timed(classifier, batch, BATCH))
        if rounds >= MIN_ROUNDS and time.perf_counter() - began >= settings.DISTILLERY_SPEED_SECONDS:
            break

    how = {
        "run": uuid.uuid4().hex, "measured_at": timezone.now().isoformat(timespec="seconds"),
        "where": f"web process on {socket.gethostname()}",
        "runtime": serving_runtime(), "threads": settings.DISTILLERY_SERVING_THREADS or "one per core",
        "texts": source, "batch": BATCH, "rounds": rounds, "models": [r.pk for r in records],
        "method": "interleaved rounds: each round times every model and precision once; medians",
    }  # fmt: skip
    out = {}
    for record in records:
        figures = dict(how)
        for precision in PRECISIONS:
            key = (record.pk, precision)
            if key in classifiers:
                figures[precision] = {
                    "latency_ms_b1": statistics.median(single[key]) * 1000,
                    "samples_per_s_b32": BATCH / statistics.median(batched[key]),
                    "runtime": classifiers[key].runtime,
                }
            else:
                figures[precision] = {"error": errors.get(key, "not measured")}
        ModelRecord.objects.filter(pk=record.pk).update(serving_speed=figures)
        record.serving_speed = figures
        out[record.pk] = figures
    return out


def _timed(classifier, texts: list[str], batch_size: int) -> float:
    start = time.perf_counter()
    classifier.predict(texts, batch_size=batch_size)
    return time.perf_counter() - start
