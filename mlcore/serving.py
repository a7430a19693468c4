"""Serving engines: how a web process turns concurrent classify requests into model calls.

`BatchingEngine` gathers the texts of concurrent requests into micro-batches on one model thread:
a request is put on a bounded queue; the model thread takes what is waiting (up to `max_batch` texts),
tokenises it in one call of the fast tokenizer, runs it sorted by length in padding-efficient chunks, and
completes each request's future with its own predictions. When one request arrives alone (the last batch held
a single request) it runs at once, so a lone client pays no batching delay; under load the thread waits up to
`max_wait_ms` for a batch to fill, and requests pile up while a batch runs anyway.

`classify()` (asyncio callers: the web's fast path) goes further for a lone small request: when nothing else is
in flight or queued, the model thread is idle, the last batch held a single request and no other request
reached `classify()` in the same turn of the event loop, it runs the model on the calling thread. Handing a
request to the model thread and waking the event loop again for its answer cost 0.13 ms on 2 vCPUs (one short
sentence, int8 ONNX, awaited 400 times in a row: 0.74 ms through the thread, 0.62 inline, 0.61 for the bare
`predict`), a sixth of the answer. Only small batches (`small_batch_chars`) run there, so the loop is held for
about one short forward pass; under load every request still goes through the queue and is batched.

`BaselineEngine` is the study's way, kept to measure against: one request at a time, tokenised alone, no
batching.

Both are thread-safe and independent of any event loop: `submit()` returns a concurrent.futures.Future, and
`classify()` awaits it from asyncio code.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from mlcore.inference import Classifier, Prediction

log = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    """The engine's queue is full: the caller should answer 503 and let the client retry."""


class EngineClosed(RuntimeError):
    """The engine was closed (its model was replaced) before it took this request."""


def set_threads(threads: int = 0) -> int:
    """Use `threads` torch threads (0: one per core) in the calling thread; returns it.

    One model thread per process does all inference, so torch's pool is sized to the cores, not to the
    number of requests.
    """
    count = threads or os.cpu_count() or 1
    torch.set_num_threads(count)
    return count


@dataclass
class _Request:
    texts: list[str]
    future: Future = field(default_factory=Future)


@dataclass
class EngineStats:
    requests: int = 0
    texts: int = 0
    batches: int = 0
    max_batch_seen: int = 0

    @property
    def mean_batch(self) -> float:
        return self.texts / self.batches if self.batches else 0.0


class BatchingEngine:
    """Micro-batching classifier: one model thread, a bounded queue of requests, futures for answers."""

    def __init__(
        self,
        classifier: Classifier,
        *,
        max_batch: int = 16,
        max_wait_ms: float = 3.0,
        max_queue: int = 2048,
        threads: int = 0,
        small_batch_chars: int = 512,
        warmup: bool = True,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be at least 1 and max_wait_ms at least 0")
        self.classifier = classifier
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        # torch's thread count is per calling thread: the model thread sets its own. Small batches run on one
        # thread: measured on 2 cores, one 18-token sentence took 2.3 ms on 1 thread and 4.1 ms on 2 (the
        # second thread costs more to wake than it saves), while 32 reviews took 240 ms on 1 and 145 on 2.
        self.threads = threads or os.cpu_count() or 1
        self.small_batch_chars = small_batch_chars
        self._queue: queue.Queue[_Request | None] = queue.Queue(maxsize=max_queue)
        self._threads_now = 0  # torch threads the model thread set last (torch's setting is per thread)
        self._inline_threads = threading.local()  # the same for the threads that ran a request inline
        self._closed = False
        self._last_batch_requests = 1
        # The inline path (classify()): held while a batch runs, on the model thread or inline, so the event loop
        # never waits for the model thread; and, touched on the event loop only, arrivals and requests in flight.
        self._busy = threading.Lock()
        self._arrivals = 0
        self._in_flight = 0
        self.stats = EngineStats()
        # Called on the model thread with each answered batch's number of texts (the web side's metrics); the
        # warm-up pass is not a batch anyone sent, so it is not reported.
        self.on_batch = on_batch
        if warmup:  # the first forward pass allocates and picks kernels: do it before the first user waits
            classifier.predict(["warm up"] * min(max_batch, 8))
        self._thread = threading.Thread(target=self._run, name="distillery-batching", daemon=True)
        self._thread.start()

    def submit(self, texts: list[str]) -> Future:
        """Queue `texts` (validated by the caller) and return a future of their predictions, in order."""
        if self._closed:
            raise EngineClosed("this model is being replaced; retry")
        request = _Request(list(texts))
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            raise Overloaded(f"the classify queue is full ({self._queue.maxsize} requests); retry shortly") from None
        return request.future

    async def classify(self, texts: list[str]) -> list[Prediction]:
        """Predictions of `texts`, awaited; a lone small request runs inline (see the module's docstring)."""
        if self._last_batch_requests == 1 and not self._in_flight and sum(map(len, texts)) <= self.small_batch_chars:
            ticket = self._arrivals = self._arrivals + 1
            # One turn of the loop: requests read in the same turn as this one reach this line meanwhile.
            await asyncio.sleep(0)
            if ticket == self._arrivals and not self._in_flight and self._queue.empty():
                predictions = self._inline(texts)
                if predictions is not None:
                    return predictions
        self._in_flight += 1
        try:
            return await asyncio.wrap_future(self.submit(texts))
        finally:
            self._in_flight -= 1

    def _inline(self, texts: list[str]) -> list[Prediction] | None:
        """`texts` classified on the calling thread if the model thread is idle, else None (then queue them)."""
        if self._closed:
            raise EngineClosed("this model is being replaced; retry")
        if not self._busy.acquire(blocking=False):
            return None
        # Another thread using the classifier outside the engine (a speed measurement, an explanation) holds its
        # lock for a whole call: queue rather than block the event loop on it (or deadlock, if it is this thread).
        held = getattr(self.classifier, "_lock", None)
        if held is not None and held.locked():
            self._busy.release()
            return None
        try:
            self._last_batch_requests = 1
            if not getattr(self._inline_threads, "set", False):  # a small batch: one thread, as on the model thread
                torch.set_num_threads(1)
                self._inline_threads.set = True
            try:
                predictions = self.classifier.predict(list(texts), batch_size=self.max_batch)
            except Exception:  # failed as a batch on the model thread fails: logged, raised to its caller
                log.exception("classify of %d texts inline failed", len(texts))
                raise
            self._count(1, len(texts))
        finally:
            self._busy.release()
        return predictions

    def predict(self, texts: list[str], timeout: float | None = None) -> list[Prediction]:
        """Blocking form of classify(), for sync callers (pages, jobs)."""
        return self.submit(texts).result(timeout)

    def close(self, timeout: float | None = 30) -> None:
        """Stop taking requests; those already queued are still answered, then the thread ends."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    # --- the model thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._answer(batch)
            if stop:
                return

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        """`first` plus whatever fits in max_batch texts: what is queued now, then, under load, what arrives
        within max_wait. Returns (batch, whether the close sentinel was seen)."""
        batch, size = [first], len(first.texts)
        wait = self._last_batch_requests > 1 and self.max_wait > 0
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            try:
                if wait:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    item = self._queue.get(timeout=remaining)
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            size += len(item.texts)
        return batch, False

    def _answer(self, batch: list[_Request]) -> None:
        live = [r for r in batch if r.future.set_running_or_notify_cancel()]
        self._last_batch_requests = len(batch)
        if not live:
            return
        texts = [text for request in live for text in request.texts]
        with self._busy:
            self._set_threads(1 if sum(map(len, texts)) <= self.small_batch_chars else self.threads)
            try:
                predictions = self.classifier.predict(texts, batch_size=self.max_batch)
            except Exception as exc:  # one bad batch fails its requests, not the engine
                log.exception("classify batch of %d texts failed", len(texts))
                for request in live:
                    request.future.set_exception(exc)
                return
            self._count(len(live), len(texts))
        start = 0
        for request in live:
            end = start + len(request.texts)
            request.future.set_result(predictions[start:end])
            start = end

    def _set_threads(self, wanted: int) -> None:
        if wanted != self._threads_now:
            torch.set_num_threads(wanted)
            self._threads_now = wanted

    def _count(self, requests: int, texts: int) -> None:
        self.stats.requests += requests
        self.stats.texts += texts
        self.stats.batches += 1
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, texts)
        if self.on_batch is not None:
            try:
                self.on_batch(texts)
            except Exception:  # a report that fails must not fail the answers
                log.exception("on_batch failed")


class BaselineEngine:
    """The study's serving: requests one at a time, each tokenised and run alone."""

    def __init__(self, classifier: Classifier, *, warmup: bool = True) -> None:
        self.classifier = classifier
        self._lock = threading.Lock()
        if warmup:
            classifier.predict(["warm up"])

    def predict(self, texts: list[str]) -> list[Prediction]:
        with self._lock:
            return [self.classifier.predict([text])[0] for text in texts]

    async def classify(self, texts: list[str]) -> list[Prediction]:
        return await asyncio.to_thread(self.predict, texts)

    def close(self, timeout: float | None = None) -> None:
        pass
