"""A dataset's preview: its first rows, its label distribution, and its texts' lengths in a model's tokens.

Runs in: the web process. The token counts are cached (the file never changes), so a page view reads the file
and tokenises it once per (dataset, model, max_length).
"""

from __future__ import annotations

import contextlib
import hashlib

from django.core.cache import cache
from django.core.exceptions import ValidationError

from config.redis_pool import UNREACHABLE
from mlcore import catalogue
from mlcore.config import ConfigError, TrainConfig, field_range
from mlcore.preview import token_length_summary

from ..models import Dataset
from .services import load_dataset

PREVIEW_ROWS = 10  # sample rows a preview shows by default
PREVIEW_MAX_ROWS = 50
PREVIEW_TEXT_CHARS = 400  # characters of each sample text; the full text is in the file
PREVIEW_CACHE_SECONDS = 3600  # a dataset's file never changes, so its token lengths can be kept


def dataset_preview(
    dataset: Dataset, *, model_id: str = "", max_length: int = TrainConfig.max_length, rows: int = PREVIEW_ROWS
) -> dict:
    """What a dataset holds: its first rows, its label distribution, and its texts' lengths in the tokens of
    `model_id` (a catalogue id; the bundled model by default) with the share that max_length would cut.

    Raises ValidationError for a model outside the catalogue, one that cannot be loaded here (a hub id offline),
    or a max_length or row count out of range. The token statistics are cached per (dataset, model, max_length).
    """
    from mlcore.loading import ModelLoadError  # imports torch: here, not at web start

    model_id = model_id or catalogue.BUNDLED_ID
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
    # The stored file's name too: ids restart in a fresh database while the cache (Redis) lives on.
    stored = hashlib.sha1(dataset.file.name.encode(), usedforsecurity=False).hexdigest()[:16]
    key = f"preview:{dataset.pk}:{stored}:{model_id}:{max_length}"
    try:
        preview = cache.get(key)
    except UNREACHABLE:  # only a cache: Redis down costs the tokenising again, not the page
        preview = None
    if preview is None:  # the file is read and tokenised once per key, not on every page view
        data = load_dataset(dataset)
        try:
            tokens = token_length_summary(data.texts, model_id, max_length=max_length)
        except ModelLoadError as e:
            raise ValidationError({"model": str(e)}) from e
        sample = [
            {"text": text[:PREVIEW_TEXT_CHARS], "text_chars": len(text), "label": data.label_names[label]}
            for text, label in zip(data.texts[:PREVIEW_MAX_ROWS], data.labels[:PREVIEW_MAX_ROWS], strict=True)
        ]
        preview = {
            "id": dataset.pk, "num_rows": len(data), "labels": data.label_names, "label_counts": data.label_counts(),
            "model": model_id, "max_length": max_length, "rows": sample, "tokens": tokens,
        }  # fmt: skip
        with contextlib.suppress(*UNREACHABLE):
            cache.set(key, preview, PREVIEW_CACHE_SECONDS)
    return preview | {"rows": preview["rows"][:rows]}
