"""CPU-bound work of a request run in helper processes, so that it holds neither the web process's GIL nor its
event loop: reading and checking an uploaded table, counting a dataset's tokens for its preview, unpacking and
loading a model zip to check it.

Runs in: the web process; its helper processes run mlcore functions only (no Django, no database). A leaf: it
imports nothing of jobs.

Why processes and not threads: uvicorn runs each request's sync code in a thread of its own (Django's
ASGIHandler opens a ThreadSensitiveContext per request), so views do not queue behind one another, but all of
those threads and the event loop share one GIL. Parsing a large CSV is pure Python, and some of its steps are a
single C call that keeps the GIL throughout (decoding the file, wrapping its text for the csv reader): with a
126 MB upload every other page of the process waited 4 s at once, with its token preview 5.6 s. A helper
process has a GIL of its own, and the request that waits for it waits without holding the web process's.

Why not a Celery task: an upload must be checked before it is answered (a bad file is a 400 at once, nothing
stored), so its reading cannot wait in a queue; the cpu queue's worker takes one task at a time, so a preview
sent there would wait behind a file classification of any length; and both are seconds of CPU with small
results, next to the request that asks for them.

DISTILLERY_WEB_HELPERS processes per web process (0: the work runs in the request's thread, as before), started
on first use and kept (a tokenizer is loaded once per helper; a helper that has read a file at the upload limit
and counted its tokens holds about 0.7 GB), at a lower CPU priority than the web process
(HELPER_NICENESS) so that on a busy machine pages still come first (and above a training worker's
DISTILLERY_TRAINING_NICE). A helper that dies (killed for memory on a huge file, say) fails what it was running
with HelperLost; the pool is replaced and the next call works. Helpers end with their web process.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from django.conf import settings

logger = logging.getLogger(__name__)

HELPER_NICENESS = 5  # added to the helpers' nice value: the web process's requests get the CPU first
T = TypeVar("T")

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


class HelperLost(RuntimeError):
    """The helper process running the work stopped before answering (killed, or out of memory)."""


def submit(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
    """Run fn(*args, **kwargs) in a helper process; its Future (an exception raised there is raised by
    .result(); a helper lost on the way is HelperLost). fn must be importable by name, and its arguments and
    result picklable: pass paths, not files."""
    if settings.DISTILLERY_WEB_HELPERS == 0:
        return _run_here(fn, args, kwargs)
    pool = _current_pool()
    try:
        future = pool.submit(fn, *args, **kwargs)
    except BrokenProcessPool:  # a helper died since the last call, when nothing of this call was lost yet
        _replace(pool)
        pool = _current_pool()
        future = pool.submit(fn, *args, **kwargs)
    return _translated(future, pool)


def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """submit() and wait for the answer; the calling thread waits without holding the GIL. Where the helper is
    lost, the work runs once more on a new one (it must be safe to run twice: reading a file is): a helper that
    dies between two calls can fail the next call, which had nothing to do with it."""
    try:
        return submit(fn, *args, **kwargs).result()
    except HelperLost:
        logger.warning("a web helper process stopped while running %s; running it again", fn.__qualname__)
        return submit(fn, *args, **kwargs).result()


def helper_pids() -> list[int]:
    """The process ids of the running helpers (for tests and diagnostics)."""
    with _lock:
        processes = dict(getattr(_pool, "_processes", None) or {})
    return [pid for pid, process in processes.items() if process.is_alive()]


def shutdown() -> None:
    """Stop the helpers (they start again on the next call)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _current_pool() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn, not fork: the web process has threads (uvicorn's, the serving engines', ONNX Runtime's),
            # and a forked child inherits their locks in whatever state they were.
            _pool = ProcessPoolExecutor(
                max_workers=settings.DISTILLERY_WEB_HELPERS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_helper,
            )
        return _pool


def _replace(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)
    logger.warning("a web helper process stopped; starting new ones")


def _translated(future: Future, pool: ProcessPoolExecutor) -> Future:
    """A Future that fails with HelperLost where `future` fails because its helper died (and then replaces the
    pool), and otherwise ends as `future` does."""
    outer: Future = Future()

    def settle(done: Future) -> None:
        if done.cancelled():
            outer.cancel()
            return
        error = done.exception()
        if isinstance(error, BrokenProcessPool):
            _replace(pool)
            outer.set_exception(HelperLost("the helper process stopped before it answered (out of memory?)"))
        elif error is not None:
            outer.set_exception(error)
        else:
            outer.set_result(done.result())

    future.add_done_callback(settle)
    return outer


def _run_here(fn: Callable[..., T], args: tuple, kwargs: dict) -> Future[T]:
    """DISTILLERY_WEB_HELPERS=0: the work done in the calling thread, as a finished Future."""
    future: Future = Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except Exception as exc:
        future.set_exception(exc)
    return future


def _start_helper() -> None:
    """In each helper as it starts: yield the CPU to the web process when both want it, and end with it."""
    try:
        os.nice(HELPER_NICENESS)
    except OSError:  # not allowed here: run at the same priority
        pass
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="exit-with-web", daemon=True).start()


def _exit_with(sentinel: int) -> None:
    """A helper waits for its web process to end, however it ends (a SIGKILL leaves no time to stop helpers), and
    ends then too: an orphan would wait on its task queue for ever."""
    multiprocessing.connection.wait([sentinel])
    os._exit(0)
