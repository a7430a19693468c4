"""The micro-batching engine: requests batched together still get their own answers, in order; a full queue
and a closed engine say so; int8 and the length-aware chunking keep predictions right."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from mlcore.inference import Classifier, _chunks
from mlcore.serving import BaselineEngine, BatchingEngine, EngineClosed, Overloaded

TEXTS = [
    "great good film",
    "awful bad movie",
    "good",
    "bad bad bad",
    "a great film with a good cast",
    "bad plot and awful acting",
    "wonderful",
    "terrible",
    "good good good good good",
    "meh",
]


@pytest.fixture(scope="module")
def classifier(tiny_model_dir) -> Classifier:
    return Classifier.load(tiny_model_dir)


def _alone(classifier: Classifier, text: str):
    return classifier.predict([text])[0]


def test_requests_batched_together_get_their_own_answers(classifier):
    engine = BatchingEngine(classifier, max_batch=16, max_wait_ms=0)
    try:
        # Hold the model while 30 requests queue up: the first runs alone, the others fill batches of 16.
        with classifier._lock:
            futures = [engine.submit([TEXTS[i % len(TEXTS)]] if i % 3 else TEXTS[i % 4 : i % 4 + 3]) for i in range(30)]
        answers = [f.result(timeout=30) for f in futures]
    finally:
        engine.close()
    assert engine.stats.requests == 30
    assert engine.stats.batches < 30 and engine.stats.max_batch_seen > 1  # they really were batched
    for i, answer in enumerate(answers):
        sent = [TEXTS[i % len(TEXTS)]] if i % 3 else TEXTS[i % 4 : i % 4 + 3]
        assert len(answer) == len(sent)
        for text, prediction in zip(sent, answer, strict=True):
            alone = _alone(classifier, text)
            assert prediction.label == alone.label
            assert prediction.probabilities == pytest.approx(alone.probabilities, abs=1e-5)


def test_on_batch_hears_each_batch_size_and_a_failing_hook_fails_no_answer(classifier):
    sizes: list[int] = []
    engine = BatchingEngine(classifier, max_batch=16, max_wait_ms=0, on_batch=sizes.append)  # warm-up not heard
    try:
        with classifier._lock:  # queued together: batched
            futures = [engine.submit(TEXTS[:k]) for k in (1, 3, 2, 5)]
        [f.result(timeout=30) for f in futures]
    finally:
        engine.close()
    assert sum(sizes) == 1 + 3 + 2 + 5 and len(sizes) == engine.stats.batches < 4
    assert max(sizes) == engine.stats.max_batch_seen

    def broken(size: int) -> None:
        raise RuntimeError("metrics backend gone")

    engine = BatchingEngine(classifier, max_batch=16, max_wait_ms=0, on_batch=broken)
    try:
        assert [p.label for p in engine.predict(["good"], timeout=30)] == [_alone(classifier, "good").label]
    finally:
        engine.close()


def test_concurrent_asyncio_clients_each_get_their_text(classifier):
    engine = BatchingEngine(classifier, max_batch=8, max_wait_ms=2)

    async def many():
        return await asyncio.gather(*(engine.classify([text]) for text in TEXTS * 5))

    try:
        results = asyncio.run(many())
    finally:
        engine.close()
    for text, (prediction,) in zip(TEXTS * 5, results, strict=True):
        assert prediction.probabilities == pytest.approx(_alone(classifier, text).probabilities, abs=1e-5)


def test_a_full_queue_refuses_instead_of_growing(classifier):
    engine = BatchingEngine(classifier, max_batch=1, max_queue=2, max_wait_ms=0)
    try:
        with classifier._lock:
            first = engine.submit(["good"])  # taken by the model thread, which then waits for the lock
            while engine._queue.qsize():
                threading.Event().wait(0.001)
            engine.submit(["bad"])
            engine.submit(["good"])
            with pytest.raises(Overloaded, match="queue is full"):
                engine.submit(["bad"])
        assert first.result(timeout=30)[0].label in classifier.label_names
    finally:
        engine.close()


def test_a_closed_engine_answers_what_it_holds_and_refuses_new_requests(classifier):
    engine = BatchingEngine(classifier, max_batch=4, max_wait_ms=0)
    with classifier._lock:
        held = [engine.submit([text]) for text in TEXTS[:6]]
        closer = threading.Thread(target=engine.close)
        closer.start()
        while not engine._closed:
            threading.Event().wait(0.001)
        with pytest.raises(EngineClosed):
            engine.submit(["good"])
    closer.join(30)
    assert [f.result(timeout=1)[0].label for f in held] == [_alone(classifier, t).label for t in TEXTS[:6]]


def test_a_failing_batch_fails_its_requests_and_the_engine_goes_on(classifier, monkeypatch):
    engine = BatchingEngine(classifier, max_batch=4, max_wait_ms=0)
    try:
        original = classifier.predict
        monkeypatch.setattr(classifier, "predict", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
        with pytest.raises(RuntimeError, match="boom"):
            engine.predict(["good"], timeout=30)
        monkeypatch.setattr(classifier, "predict", original)
        assert engine.predict(["good"], timeout=30)[0].label == _alone(classifier, "good").label
    finally:
        engine.close()


def test_the_baseline_engine_gives_the_same_answers(classifier):
    baseline = BaselineEngine(classifier)
    answers = asyncio.run(baseline.classify(TEXTS))
    assert [a.label for a in answers] == [_alone(classifier, t).label for t in TEXTS]


def test_chunks_respect_rows_and_the_token_budget():
    lengths = [4, 4, 4, 4, 10, 10, 30, 30, 30]
    chunks = _chunks(list(range(9)), lengths, max_rows=3, token_budget=60)
    assert chunks == [[0, 1, 2], [3, 4, 5], [6, 7], [8]]
    assert sorted(i for c in chunks for i in c) == list(range(9))
    assert _chunks([0], [500], max_rows=4, token_budget=10) == [[0]]  # one long row still runs


def test_int8_serves_the_same_labels_and_is_marked(tiny_model_dir, classifier):
    int8 = Classifier.load(tiny_model_dir, precision="int8")
    assert int8.precision == "int8" and classifier.precision == "fp32"
    query = int8.model.bert.encoder.layer[0].attention.self.query
    assert type(query).__module__.startswith("torch.ao.nn.quantized.dynamic") and query.weight().dtype == torch.qint8
    same = sum(int8.predict([t])[0].label == _alone(classifier, t).label for t in TEXTS)
    assert same >= len(TEXTS) - 1
    with pytest.raises(ValueError, match="precision"):
        Classifier.load(tiny_model_dir, precision="fp16")


def test_small_batches_run_on_one_thread_and_large_ones_on_all(classifier):
    engine = BatchingEngine(classifier, max_batch=64, threads=2, small_batch_chars=100)
    try:
        engine.predict(["good"], timeout=30)
        assert engine._threads_now == 1
        engine.predict(["a good and great film " * 3] * 4, timeout=30)
        assert engine._threads_now == 2
    finally:
        engine.close()


def _record_threads(classifier, monkeypatch) -> list[int]:
    """Patch classifier.predict to note the thread of every call (after the engine's warm-up)."""
    threads: list[int] = []
    original = classifier.predict

    def predict(texts, batch_size=32):
        threads.append(threading.get_ident())
        return original(texts, batch_size=batch_size)

    monkeypatch.setattr(classifier, "predict", predict)
    return threads


def test_a_lone_small_request_runs_on_the_event_loop_without_the_thread_hop(classifier, monkeypatch):
    engine = BatchingEngine(classifier, max_batch=8, max_wait_ms=2)
    threads = _record_threads(classifier, monkeypatch)

    async def one_at_a_time():
        return [await engine.classify([text]) for text in TEXTS[:3]]

    try:
        answers = asyncio.run(one_at_a_time())
    finally:
        engine.close()
    assert threads == [threading.get_ident()] * 3  # asyncio.run's loop thread, never the model thread
    assert [a[0].label for a in answers] == [_alone(classifier, t).label for t in TEXTS[:3]]
    assert engine.stats.requests == engine.stats.batches == 3  # counted as batches of one


def test_requests_arriving_together_still_go_to_the_model_thread_in_batches(classifier, monkeypatch):
    engine = BatchingEngine(classifier, max_batch=8, max_wait_ms=2)
    threads = _record_threads(classifier, monkeypatch)

    async def together():
        return await asyncio.gather(*(engine.classify([text]) for text in TEXTS))

    try:
        answers = asyncio.run(together())
    finally:
        engine.close()
    assert set(threads) == {engine._thread.ident}
    assert engine.stats.batches < len(TEXTS) and engine.stats.max_batch_seen > 1
    assert [a[0].label for a in answers] == [_alone(classifier, t).label for t in TEXTS]


def _queued_not_inline(engine, holding, threads) -> None:
    """With `holding` held by this thread, a lone classify() on another thread's loop is queued, not run inline
    (its loop never waits on the lock); released, the model thread answers it."""
    answered: list = []
    with holding:
        caller = threading.Thread(target=lambda: answered.append(asyncio.run(engine.classify(["good"]))), daemon=True)
        caller.start()
        for _ in range(5000):  # handed to the model thread within 5 s
            if engine._in_flight:
                break
            threading.Event().wait(0.001)
        assert engine._in_flight == 1 and not answered  # queued, not run inline
    caller.join(30)
    assert threads[-1] == engine._thread.ident and answered[0][0].label in engine.classifier.label_names


def test_large_requests_and_a_busy_model_keep_the_queue(classifier, monkeypatch):
    engine = BatchingEngine(classifier, max_batch=8, max_wait_ms=0, small_batch_chars=20)
    threads = _record_threads(classifier, monkeypatch)
    try:
        asyncio.run(engine.classify(["a good and great film with a fine cast"]))  # over small_batch_chars
        assert threads == [engine._thread.ident]
        _queued_not_inline(engine, engine._busy, threads)  # a batch running on the model thread
        _queued_not_inline(engine, classifier._lock, threads)  # the classifier in use outside the engine
        assert len(threads) == 3
    finally:
        engine.close()
