"""Classify: texts through a model's serving engine, as answers of one shape for the DRF view, the ASGI fast
path, the classify page and Compare's "Try a text".

Runs in: the web process.
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError

from ..models import ModelRecord
from ..observability import classify_timer
from .engines import cached_engine, engine_for


class Unavailable(Exception):
    """The model cannot take the request now (its queue is full, or it is being replaced): retry shortly. Each
    edge answers it with a 503."""


async def classify_texts(record: ModelRecord, texts: list[str], path: str) -> list:
    """The predictions (mlcore.inference.Prediction) of `record`'s engine for `texts`, awaited without holding a
    thread; the engine is loaded first if needed (in a worker thread). Their time is observed as answered at
    `path` (jobs.observability). Raises Unavailable."""
    with classify_timer(path):
        return await _classify(record, texts)


async def _classify(record: ModelRecord, texts: list[str]) -> list:
    from mlcore.serving import EngineClosed, Overloaded  # imports torch: here, at the first classify

    for _ in range(3):  # an engine closed between lookup and submit (a model swap) is looked up again
        engine = cached_engine(record) or await sync_to_async(engine_for, thread_sensitive=False)(record)
        try:
            return await engine.classify(texts)
        except EngineClosed:
            continue
        except Overloaded as e:
            raise Unavailable(str(e)) from None
    raise Unavailable("the model is being replaced; retry")


# How far the top label must lead the next one before an answer reads as a decision, in probability points.
COIN_FLIP_MARGIN = 0.10  # under this, 55% against 45% or closer: a coin flip
UNCERTAIN_MARGIN = 0.30  # under this, up to 65% against 35%: uncertain


def certainty(probabilities: dict[str, float]) -> dict[str, Any]:
    """How decided an answer is: {"level": "coin_flip", "uncertain" or "clear", "margin" (the top label's lead
    over the next, 0..1), "note": a sentence for the first two, empty for "clear"}. The probabilities are the
    model's own, not calibrated: a near tie means the model cannot tell, not that either label is half right."""
    ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])
    if len(ranked) < 2:
        return {"level": "clear", "margin": 1.0, "note": ""}
    (top, p1), (second, p2) = ranked[0], ranked[1]
    margin = p1 - p2
    lead = f"“{top}” ({100 * p1:.1f}%) against “{second}” ({100 * p2:.1f}%)"
    if margin < COIN_FLIP_MARGIN:
        return {"level": "coin_flip", "margin": margin, "note": f"A coin flip: {lead}; the model cannot tell."}
    if margin < UNCERTAIN_MARGIN:
        return {"level": "uncertain", "margin": margin, "note": f"Uncertain: {lead}."}
    return {"level": "clear", "margin": margin, "note": ""}


def prediction_dict(p) -> dict[str, Any]:
    """A prediction as the API answers it (what PredictionSerializer declares), built directly: the hot path."""
    return {"label": p.label, "probability": p.probability, "probabilities": p.probabilities, "truncated": p.truncated}


def answers(record: ModelRecord, predictions: list) -> list[dict[str, Any]]:
    """The API's answer for each prediction of `record`'s."""
    return [{**prediction_dict(p), "model": record.pk} for p in predictions]


def side_by_side(records: list[ModelRecord], text: str) -> list[dict[str, Any]]:
    """Each model's prediction for one text, side by side, with the time it took once loaded (the serving engine
    of this process, as classify answers). At most DISTILLERY_SERVING_CACHE models: more would push each other
    out of the process's loaded engines and reload every time.

    Raises ValidationError when asked for more."""
    limit = settings.DISTILLERY_SERVING_CACHE
    if len(records) > limit:
        raise ValidationError(f"at most {limit} models answer a text together, not {len(records)}")
    engines = [engine_for(record) for record in records]  # loading first: it is not the answer's time
    out = []
    for record, engine in zip(records, engines, strict=True):
        start = time.perf_counter()
        prediction = engine.predict([text])[0]
        elapsed = (time.perf_counter() - start) * 1000
        out.append({
            "id": record.pk, "name": record.name, **prediction_dict(prediction), "latency_ms": round(elapsed, 2),
            "serving_precision": record.serving_precision, "certainty": certainty(prediction.probabilities),
        })  # fmt: skip
    return out
