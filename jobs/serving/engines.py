"""The web process's serving engines: one per (model, precision), loaded once, kept in a small LRU.

A model record's files never change, so promoting another model makes the next request look up another key;
its engine is built (loaded, quantised if chosen, warmed up) before it is published here, so no request sees a
half-loaded model, and requests already queued on the old engine finish on it. An engine pushed out of the
LRU stops taking requests and answers those it holds before its thread ends.

Runs in: the web process (and a worker's file classification, through load_classifier).
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings

from ..models import ModelRecord
from ..observability import observe_batch
from ..registry.precision import serving_runtime as runtime
from ..registry.storage import model_dir, onnx_exports_dir

log = logging.getLogger(__name__)

_lock = threading.Lock()
_engines: OrderedDict[tuple, Any] = OrderedDict()
_loading: dict[tuple, threading.Lock] = {}
_explainers: OrderedDict[str, Any] = OrderedDict()
_preloads: set[threading.Thread] = set()  # preloads in flight


def import_runtime() -> None:
    """Import every mlcore module the web process loads on demand, now, from the one thread there is.

    transformers is a lazy module: a thread that imports from it while another thread is still initialising it
    can be handed the half-built module (ImportError: cannot import name 'PreTrainedModel'), which is what the
    first classify after a promote met while the promote's preload thread was importing. Python's import locks do
    not cover that; importing before any thread exists does. config/asgi.py calls it at web start (seconds, once).
    """
    import mlcore.artifacts  # noqa: F401  # torch and transformers: every module requests import lazily
    import mlcore.explain  # noqa: F401
    import mlcore.inference  # noqa: F401
    import mlcore.loading  # noqa: F401
    import mlcore.onnxrt  # noqa: F401
    import mlcore.precisions  # noqa: F401
    import mlcore.serving  # noqa: F401


def _key(record: ModelRecord) -> tuple:
    # The artifact prefix is unique per stored model; ids can come back (e.g. a database restored from backup).
    return (record.artifact_prefix, record.serving_precision, settings.DISTILLERY_SERVING_ENGINE, runtime())


def load_classifier(record: ModelRecord, precision: str | None = None):
    """`record`'s Classifier at `precision` (default: its serving precision) on the serving runtime, at its
    calibration temperature; a model that cannot be exported to ONNX is served by PyTorch instead (logged)."""
    from mlcore.inference import Classifier  # imports torch: here, at the first classify, not at web start

    precision = precision or record.serving_precision
    folder = model_dir(record)
    if runtime() == "onnx":
        try:
            return Classifier.load(
                folder,
                device="cpu",
                precision=precision,
                runtime="onnx",
                threads=settings.DISTILLERY_SERVING_THREADS,
                onnx_dir=onnx_exports_dir(record),
                spin=settings.DISTILLERY_SERVING_SPIN,
                temperature=record.temperature,
            )
        except Exception:
            log.warning("model %s could not run in ONNX Runtime; serving it with PyTorch", record.pk, exc_info=True)
    return Classifier.load(folder, device="cpu", precision=precision, temperature=record.temperature)


def cached_engine(record: ModelRecord):
    """The engine for `record` if it is loaded, else None; cheap enough to call on the event loop."""
    with _lock:
        engine = _engines.get(_key(record))
        if engine is not None:
            _engines.move_to_end(_key(record))
        return engine


def engine_for(record: ModelRecord):
    """The engine for `record`, loading it first if needed (seconds: call it off the event loop)."""
    key = _key(record)
    engine = cached_engine(record)
    if engine is not None:
        return engine
    with _lock:
        loading = _loading.setdefault(key, threading.Lock())
    with loading:  # one load per key; other keys and cached lookups go on meanwhile
        engine = cached_engine(record)
        if engine is not None:
            return engine
        engine = _build(record)
        with _lock:
            _engines[key] = engine
            _loading.pop(key, None)
            evicted = []
            while len(_engines) > settings.DISTILLERY_SERVING_CACHE:
                evicted.append(_engines.popitem(last=False)[1])
    _close_in_background(evicted)
    return engine


def _close_in_background(engines: list) -> None:
    """Close engines without waiting: each still answers the requests it holds, then its thread ends."""
    for engine in engines:
        threading.Thread(target=engine.close, name="distillery-engine-close", daemon=True).start()


def _build(record: ModelRecord):
    from mlcore.inference import Classifier  # torch loads on first classify, not at web start
    from mlcore.serving import BaselineEngine, BatchingEngine, set_threads

    set_threads(settings.DISTILLERY_SERVING_THREADS)
    if settings.DISTILLERY_SERVING_ENGINE == "baseline":  # the study's serving: fp32, one at a time
        return BaselineEngine(Classifier.load(model_dir(record), device="cpu", temperature=record.temperature))
    classifier = load_classifier(record)
    log.info("serving model %s (%s, %s)", record.pk, record.serving_precision, classifier.runtime)
    engine = BatchingEngine(
        classifier,
        max_batch=settings.DISTILLERY_SERVING_MAX_BATCH,
        max_wait_ms=settings.DISTILLERY_SERVING_MAX_WAIT_MS,
        max_queue=settings.DISTILLERY_SERVING_QUEUE,
        threads=settings.DISTILLERY_SERVING_THREADS,
        on_batch=observe_batch,  # distillery_serving_batch_size
    )
    _freeze_heap()
    return engine


def _freeze_heap() -> None:
    """Move what is alive now (Django, torch, transformers, the model) out of the garbage collector's view.

    A full collection walks every tracked object; with a model loaded that took tens of milliseconds and
    stalled every request in flight, which showed as the p99 under load. Frozen objects are never scanned
    again; objects made by requests are collected as usual.
    """
    gc.collect()
    gc.freeze()


def preload(record: ModelRecord) -> None:
    """Load `record`'s engine in the background (after a promote), so its first request does not wait."""

    def load():
        try:
            engine_for(record)
        except Exception:
            log.exception("could not preload model %s", record.pk)
        finally:
            with _lock:
                _preloads.discard(thread)

    thread = threading.Thread(target=load, name="distillery-preload", daemon=True)
    with _lock:
        _preloads.add(thread)
    thread.start()


def explainer_for(record: ModelRecord):
    """An fp32 PyTorch Classifier for explanations (gradients need the float model, whatever serving uses)."""
    with _lock:
        engine = _engines.get(_key(record))
        if engine is not None and engine.classifier.precision == "fp32" and engine.classifier.runtime == "torch":
            return engine.classifier
        if record.artifact_prefix in _explainers:
            _explainers.move_to_end(record.artifact_prefix)
            return _explainers[record.artifact_prefix]
    from mlcore.inference import Classifier  # imports torch: here, at the first explanation

    classifier = Classifier.load(model_dir(record), device="cpu", temperature=record.temperature)
    with _lock:
        _explainers[record.artifact_prefix] = classifier
        while len(_explainers) > settings.DISTILLERY_SERVING_CACHE:
            _explainers.popitem(last=False)
    return classifier


def loaded() -> list[tuple]:
    """(artifact prefix, precision, engine kind, runtime) of every loaded engine, least recently used first."""
    with _lock:
        return list(_engines)


def discard(artifact_prefix: str) -> None:
    """Stop serving a model whose record was deleted: its engines stop taking requests (those queued are still
    answered, in the background) and its explainer is dropped."""
    with _lock:
        engines = [_engines.pop(key) for key in [k for k in _engines if k[0] == artifact_prefix]]
        _explainers.pop(artifact_prefix, None)
    _close_in_background(engines)


def reset() -> None:
    """Wait for preloads in flight, then close and forget every engine (tests, and settings changes)."""
    with _lock:
        preloads = list(_preloads)
    for thread in preloads:
        thread.join(120)
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
        _explainers.clear()
    for engine in engines:
        engine.close()
