"""Bare ASGI apps for the serving benchmark's `--floor` runs: how fast one client can be answered at all here.

`uvicorn bench.floor_app:app`, with the same server options as the platform, serves `POST` `{"text": ...}` in
one of three ways, chosen by BENCH_FLOOR_MODE, so that the platform's one-client latency can be split into
what the machine costs and what Distillery adds:

  http    answers a constant label without any model: HTTP, the server and the load generator alone;
  inline  Classifier.predict on the event loop: the model with no thread hop, no Django, no auth;
  engine  the micro-batching engine (mlcore.serving.BatchingEngine), as the platform's fast path calls it
          (awaiting classify(): a lone short request runs inline, without the hop to the model thread).

The model (BENCH_FLOOR_MODEL, at BENCH_FLOOR_PRECISION) runs on the serving runtime as the server would
(DISTILLERY_SERVING_RUNTIME, DISTILLERY_SERVING_SPIN, DISTILLERY_SERVING_THREADS). `GET` answers 200, for the
benchmark's start-up check. Not part of the product: nothing imports it but uvicorn in the benchmark.
"""

from __future__ import annotations

import json
import os

from bench.serve_bench import FLOOR_MODES, serving_runtime, serving_spin


def _load():
    mode = os.environ.get("BENCH_FLOOR_MODE", "")
    if mode not in FLOOR_MODES:
        raise SystemExit(f"BENCH_FLOOR_MODE must be one of {', '.join(FLOOR_MODES)}, got {mode!r}")
    if mode == "http":
        return mode, None
    from mlcore.inference import Classifier
    from mlcore.serving import BatchingEngine

    classifier = Classifier.load(
        os.environ["BENCH_FLOOR_MODEL"],
        precision=os.environ.get("BENCH_FLOOR_PRECISION", "fp32"),
        runtime=serving_runtime(),
        threads=int(os.environ.get("DISTILLERY_SERVING_THREADS") or 0),
        spin=serving_spin(),
    )
    if mode == "inline":
        classifier.predict(["warm up"])
        return mode, classifier
    return mode, BatchingEngine(classifier)


MODE, MODEL = _load()
HEADERS = [(b"content-type", b"application/json")]


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] != "POST":
        answer = {"status": "ok"}
    elif MODE == "http":
        answer = {"label": "positive"}
    else:
        text = json.loads(body)["text"]
        if MODE == "inline":
            prediction = MODEL.predict([text])[0]
        else:
            prediction = (await MODEL.classify([text]))[0]
        answer = {"label": prediction.label, "probabilities": prediction.probabilities}
    payload = json.dumps(answer).encode()
    headers = [*HEADERS, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
