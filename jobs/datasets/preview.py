"""A dataset's preview: its first rows, its label distribution, and its texts' lengths in a model's tokens.

Runs in: the web process. The preview is made in a helper process (jobs.offload: reading the file and
tokenising is CPU work that would hold up the process's other requests) and kept in the cache per (dataset,
model, max_length), since the file never changes. A request that finds no preview starts one and waits for it
as long as it chooses: the dataset page a moment (it shows the preview as pending and fetches it once made),
the API until it is made. One preview at a time is made per key, whichever web process asks. While Redis cannot
be reached, each request has it made again and waits for it (the page too).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from concurrent import futures
from concurrent.futures import Future

from django.core.cache import cache
from django.core.exceptions import ValidationError

from config.redis_pool import UNREACHABLE
from mlcore import catalogue
from mlcore.config import ConfigError, TrainConfig, field_range
from mlcore.data import DataError
from mlcore.preview import PreviewError, table_preview

from .. import offload
from ..files import local_file, upload_limit_bytes
from ..models import Dataset

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 10  # sample rows a preview shows by default
PREVIEW_MAX_ROWS = 50
PREVIEW_TEXT_CHARS = 400  # characters of each sample text; the full text is in the file
PREVIEW_CACHE_SECONDS = 3600  # a dataset's file never changes, so its preview can be kept
PREVIEW_FAILED_SECONDS = 60  # a file or tokenizer that failed the preview is reported this long, then tried again
# A preview being made for this long is taken for lost (its web process stopped) and made again; reading a
# file at the upload limit and counting its tokens takes well under a minute.
PREVIEW_PENDING_SECONDS = 120
PREVIEW_API_WAIT_SECONDS = 50  # the API waits this long for a preview, under the usual 60 s proxy timeout
PREVIEW_PAGE_WAIT_SECONDS = 0.3  # the dataset page waits this long, then shows the preview as pending
_POLL_SECONDS = 0.2  # how often a wait on another web process's preview looks at the cache

_lock = threading.Lock()
_making: dict[str, Future] = {}  # this process's previews being made, by cache key


class PreviewUnavailable(Exception):
    """The preview could not be made here (its helper process stopped), or not within the wait."""


def dataset_preview(
    dataset: Dataset, *, model_id: str = "", max_length: int = TrainConfig.max_length, rows: int = PREVIEW_ROWS,
    wait: float = 0.0,
) -> dict | None:  # fmt: skip
    """What a dataset holds: its first rows, its label distribution, and its texts' lengths in the tokens of
    `model_id` (a catalogue id; the bundled model by default) with the share that max_length would cut.

    Made in a helper process and cached per (dataset, model, max_length); when it is not made yet, this starts
    it and waits up to `wait` seconds: None when it is still being made then. Raises ValidationError for a
    model outside the catalogue, one that cannot be loaded here (a hub id offline), a max_length or row count
    out of range; PreviewUnavailable when its helper process stopped.
    """
    model_id = model_id or catalogue.BUNDLED_ID
    _check(model_id, max_length, rows)
    key = _key(dataset, model_id, max_length)
    try:
        preview, shared = cache.get(key), True
    except UNREACHABLE:  # only a cache: Redis down costs making it again, and the wait for it, not the page
        preview, shared = None, False
    if preview is None:
        meta = {"id": dataset.pk, "model": model_id, "max_length": max_length}
        future = _start(dataset, key, meta, shared=shared)
        preview = _wait(key, meta, future, wait if shared else max(wait, PREVIEW_API_WAIT_SECONDS))
        if preview is None:
            return None
    if "failed" in preview:
        if preview["failed"] == "helper":
            raise PreviewUnavailable(preview["message"])
        raise ValidationError({preview["failed"]: preview["message"]})
    return preview | {"rows": preview["rows"][:rows]}


def _check(model_id: str, max_length: int, rows: int) -> None:
    entry = next((e for e in catalogue.catalogue() if e["id"] == model_id), None)
    if entry is None:
        raise ValidationError({"model": f"{model_id!r} is not in the catalogue (GET /api/catalogue/)"})
    if not entry["available"]:
        raise ValidationError({"model": f"{model_id} is not available on this server (offline, or not installed)"})
    try:
        field_range(TrainConfig, "max_length").check("max_length", max_length)  # a job's own bounds
    except ConfigError as exc:
        raise ValidationError({"max_length": str(exc)}) from None
    if not 0 <= rows <= PREVIEW_MAX_ROWS:
        raise ValidationError({"rows": f"rows must be between 0 and {PREVIEW_MAX_ROWS}"})


def _key(dataset: Dataset, model_id: str, max_length: int) -> str:
    # The stored file's name too: ids restart in a fresh database while the cache (Redis) lives on.
    stored = hashlib.sha1(dataset.file.name.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"preview:{dataset.pk}:{stored}:{model_id}:{max_length}"


def _start(dataset: Dataset, key: str, meta: dict, *, shared: bool) -> Future | None:
    """Have the preview made unless it is being made: this process's Future for it, or None when another web
    process makes it (its result lands in the cache). Not `shared` (Redis cannot be reached): made here."""
    with _lock:
        if key in _making:
            return _making[key]
        if shared and not _claim(key):
            return None
        files = contextlib.ExitStack()  # a copy out of storage, when it has no paths, lives until the helper is done
        try:
            path = files.enter_context(local_file(dataset.file.name))
            future = offload.submit(
                table_preview, path, format=dataset.format, text_column=dataset.text_column,
                label_column=dataset.label_column, max_bytes=upload_limit_bytes(), model_id=meta["model"],
                max_length=meta["max_length"], rows=PREVIEW_MAX_ROWS, text_chars=PREVIEW_TEXT_CHARS,
            )  # fmt: skip
        except BaseException:
            files.close()
            with contextlib.suppress(*UNREACHABLE):
                cache.delete(f"{key}:pending")
            raise
        _making[key] = future
    future.add_done_callback(lambda done: _made(key, meta, done, files))
    return future


def _claim(key: str) -> bool:
    """Whether this process is to make the preview: no other web process is making it, and it is not made since
    the caller looked. Redis unreachable: yes."""
    try:
        if not cache.add(f"{key}:pending", 1, PREVIEW_PENDING_SECONDS):
            return False  # being made by another web process
        if cache.get(key) is not None:  # made since the caller looked
            cache.delete(f"{key}:pending")
            return False
    except UNREACHABLE:
        pass
    return True


def _outcome(meta: dict, done: Future, *, log: bool = False) -> dict:
    """The preview a finished helper call gave, or what went wrong ({"failed": field or "helper", "message"});
    `log`: an unforeseen error is logged (once per call, by its callback)."""
    if done.cancelled():  # its helpers were stopped (offload.shutdown)
        return {"failed": "helper", "message": "the preview was stopped; try again"}
    try:
        made = done.result()
    except PreviewError as exc:
        return {"failed": exc.field, "message": str(exc)}
    except DataError as exc:
        return {"failed": "file", "message": str(exc)}
    except offload.HelperLost as exc:
        return {"failed": "helper", "message": f"the preview could not be made: {exc}; try again"}
    except Exception as exc:  # unforeseen: logged (its message could name server paths), tried again on the next ask
        if log:
            logger.error("the preview %s could not be made", meta, exc_info=exc)
        return {"failed": "helper", "message": "the preview could not be made (the server logged why); try again"}
    return {"id": meta["id"], **made, "model": meta["model"], "max_length": meta["max_length"]}


def _made(key: str, meta: dict, done: Future, files: contextlib.ExitStack) -> None:
    """When the helper answers: keep the preview (a failure of the file or tokenizer briefly), free the key, drop
    any copy of the file."""
    outcome = _outcome(meta, done, log=True)
    try:
        with contextlib.suppress(*UNREACHABLE):  # the requests waiting in this process read the Future itself
            if outcome.get("failed") != "helper":  # a helper's trouble is not the file's: the next ask tries again
                cache.set(key, outcome, PREVIEW_FAILED_SECONDS if "failed" in outcome else PREVIEW_CACHE_SECONDS)
            cache.delete(f"{key}:pending")
    finally:
        with _lock:
            _making.pop(key, None)
        files.close()


def _wait(key: str, meta: dict, future: Future | None, wait: float) -> dict | None:
    """The preview once made, waiting up to `wait` seconds: on this process's Future, else (another process
    makes it) on the cache. None when it is not made by then."""
    if future is not None:
        # The Future's own outcome, not the cache's: its callback may not have stored it yet.
        return _outcome(meta, future) if futures.wait([future], timeout=wait).done else None
    deadline = time.monotonic() + wait
    try:
        while (preview := cache.get(key)) is None and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
    except UNREACHABLE:  # Redis went away meanwhile: the next ask makes it here
        return None
    return preview
