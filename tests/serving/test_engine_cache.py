"""The web process keeps at most DISTILLERY_SERVING_CACHE models loaded, least recently used first out. An
engine pushed out, discarded with its deleted model, or dropped by reset() is closed: it takes no new request
(EngineClosed, so the caller retries on the current model) but answers every request it already holds."""

from __future__ import annotations

import threading

import pytest
from django.core.files.storage import default_storage

from jobs.models import ModelRecord
from jobs.registry import storage
from jobs.serving import engines
from mlcore.serving import EngineClosed

pytestmark = pytest.mark.django_db

TEXTS = ["great good film", "awful bad movie, boring"]


@pytest.fixture(autouse=True)
def _small_cache(settings):
    settings.DISTILLERY_SERVING_CACHE = 2
    settings.DISTILLERY_SERVING_RUNTIME = "torch"  # no ONNX export per model: each load takes a moment


@pytest.fixture
def models(user, tiny_model_dir) -> list[ModelRecord]:
    """Three records of the session's tiny model, each with its own copy of the files in storage."""
    label_names = ["negative", "positive"]
    records = []
    for name in ("first", "second", "third"):
        record = ModelRecord(
            owner=user, name=name, kind=ModelRecord.Kind.IMPORTED, params={}, metrics={}, label_names=label_names,
            num_parameters=1, size_bytes=1,
        )
        records.append(storage.store(record, tiny_model_dir))
    assert len({r.artifact_prefix for r in records}) == 3
    return records


def _key(record: ModelRecord) -> tuple:
    return (record.artifact_prefix, record.serving_precision, "batched", "torch")


def _join_background_closes() -> None:
    """Wait for the engines being closed in the background (each close ends when its model thread does)."""
    for thread in threading.enumerate():
        if thread.name == "distillery-engine-close":
            thread.join(30)
            assert not thread.is_alive()


def _labels(predictions) -> list[str]:
    return [p.label for p in predictions]


def test_a_third_model_pushes_out_the_least_recently_used_one_and_closes_it(models):
    first, second, third = models
    first_engine, second_engine = engines.engine_for(first), engines.engine_for(second)
    assert engines.loaded() == [_key(first), _key(second)]

    assert engines.cached_engine(first) is first_engine  # a lookup counts as a use
    assert engines.loaded() == [_key(second), _key(first)]
    third_engine = engines.engine_for(third)

    assert engines.loaded() == [_key(first), _key(third)]
    assert engines.cached_engine(second) is None
    assert engines.engine_for(first) is first_engine  # still loaded: not built again
    _join_background_closes()
    with pytest.raises(EngineClosed):
        second_engine.submit(TEXTS)
    assert not second_engine._thread.is_alive()
    assert _labels(first_engine.predict(TEXTS, timeout=30)) == ["positive", "negative"]
    assert _labels(third_engine.predict(TEXTS, timeout=30)) == ["positive", "negative"]


def test_a_pushed_out_model_is_loaded_again_when_asked_for(models):
    first, second, third = models
    old = engines.engine_for(first)
    engines.engine_for(second)
    engines.engine_for(third)

    again = engines.engine_for(first)

    assert again is not old
    assert engines.loaded() == [_key(third), _key(first)]
    assert _labels(again.predict(TEXTS, timeout=30)) == ["positive", "negative"]


def test_a_cached_lookup_never_loads_a_model(models):
    engines.engine_for(models[0])
    assert engines.cached_engine(models[1]) is None
    assert engines.loaded() == [_key(models[0])]


def test_requests_queued_on_a_pushed_out_engine_still_get_answers(models, monkeypatch):
    first, second, third = models
    engine = engines.engine_for(first)
    engines.engine_for(second)
    reference = engine.predict(TEXTS, timeout=30)
    held = engine._queue
    in_batch, queued_at_close = threading.Event(), []
    predict = engine.classifier.predict

    def first_batch_waits_for_the_close(texts, **kwargs):
        """The model thread's first batch waits until the close is queued behind the requests sent after it."""
        if not in_batch.is_set():
            in_batch.set()
            with held.not_empty:
                assert held.not_empty.wait_for(lambda: None in held.queue, timeout=30)
                queued_at_close.append(sum(1 for item in held.queue if item is not None))
        return predict(texts, **kwargs)

    monkeypatch.setattr(engine.classifier, "predict", first_batch_waits_for_the_close)
    futures = [engine.submit([TEXTS[0]])]
    assert in_batch.wait(30)  # the model thread holds the first request
    futures += [engine.submit([text]) for text in TEXTS[1:] + TEXTS * 2]

    engines.engine_for(third)  # pushes `engine` out; it is closed in the background

    assert engines.loaded() == [_key(second), _key(third)]
    _join_background_closes()
    assert queued_at_close == [5]  # the close came while five requests were still waiting
    answers = [future.result(timeout=30) for future in futures]
    assert [a[0].label for a in answers] == _labels(reference) * 3
    for answer, expected in zip(answers, reference * 3, strict=True):
        assert answer[0].probabilities == pytest.approx(expected.probabilities, abs=1e-5)
    with pytest.raises(EngineClosed):
        engine.submit(TEXTS)


def test_discard_closes_and_forgets_every_engine_of_that_model_only(models, settings):
    settings.DISTILLERY_SERVING_CACHE = 3
    first, second, _ = models
    fp32_engine = engines.engine_for(first)
    first.serving_precision = ModelRecord.Precision.INT8  # a second engine of the same stored model
    int8_engine = engines.engine_for(first)
    kept = engines.engine_for(second)
    assert int8_engine is not fp32_engine and int8_engine.classifier.precision == "int8"
    explainer = engines.explainer_for(second)

    engines.discard(first.artifact_prefix)

    assert engines.loaded() == [_key(second)]
    _join_background_closes()
    for engine in (fp32_engine, int8_engine):
        with pytest.raises(EngineClosed):
            engine.submit(TEXTS)
    assert engines.cached_engine(second) is kept and engines.explainer_for(second) is explainer
    assert _labels(kept.predict(TEXTS, timeout=30)) == ["positive", "negative"]
    assert all(default_storage.exists(f"{first.artifact_prefix}/{n}") for n in first.artifact_files)  # files stay


def test_discard_drops_the_models_explainer(models):
    first = models[0]
    explainer = engines.explainer_for(first)  # no engine loaded: a classifier of its own, kept
    assert engines.explainer_for(first) is explainer

    engines.discard(first.artifact_prefix)

    assert engines.explainer_for(first) is not explainer


def test_reset_closes_every_engine_before_it_returns(models):
    loaded = [engines.engine_for(record) for record in models[:2]]

    engines.reset()

    assert engines.loaded() == []
    for engine in loaded:
        assert not engine._thread.is_alive()
        with pytest.raises(EngineClosed):
            engine.submit(TEXTS)
    assert engines.cached_engine(models[0]) is None
