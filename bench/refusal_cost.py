"""What a refused classify request costs the web process, against an answered one: CPU microseconds per request.

    python -m bench.refusal_cost [--requests 2000] [--rounds 3] [--out DIR]

Under a flood most answers are 429s, so a refusal must cost next to nothing. This sends token-authenticated
`POST /api/classify/` requests (one short sentence each) through the ASGI application in-process (the fast path,
jobs.api.fastpath; no sockets, no HTTP parsing) one at a time and counts the process's CPU time
(`time.process_time`: every thread, the model's included) per request, three ways:

- `429`: a user over the classify rate (the window's count set past it in Redis before the first request);
- `200`: a user under it, answered by the promoted model (a tiny BERT: the model's share of a real student's
  answer is larger, so this is a lower bound on what an answer costs);
- `401`: an unknown token (for scale: the cheapest refusal, no throttle).

Each way's figure is the median over `--rounds` rounds. The database is the configured one (DATABASE_URL; SQLite
under var/ when unset), in a scratch test database Django creates and drops; Redis is REDIS_URL's, or a private
one started for the run when it is unset. Prints and writes JSON; the last line printed is its path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.serve_bench import load_embedded
from bench.train_bench import DEFAULT_OUT

BODY = json.dumps({"text": "a great good film"}).encode()


async def request(app, token: str) -> int:
    """One POST /api/classify/ through the ASGI app; its status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/classify/", "raw_path": b"/api/classify/", "query_string": b"", "root_path": "",
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"testserver"), (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()), (b"authorization", f"Token {token}".encode()),
        ],
    }  # fmt: skip
    sent = False
    status = 0

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()  # nothing more: a client that waits for its answer

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def cpu_per_request(app, token: str, n: int, expected: int) -> float:
    """CPU microseconds per request over n requests, each answered with `expected`."""
    for _ in range(20):  # warm: the token lookup, the engine, the lease
        assert await request(app, token) == expected
    start = time.process_time()
    for _ in range(n):
        status = await request(app, token)
        assert status == expected, status
    return (time.process_time() - start) / n * 1e6


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="requests per way and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="distillery-bench-") as tmp:
        redis = None
        if not os.environ.get("REDIS_URL"):
            redis = load_embedded().EmbeddedRedis(Path(tmp) / "redis")
            os.environ["REDIS_URL"] = redis.start()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        os.environ["MEDIA_ROOT"] = str(Path(tmp) / "media")
        os.environ["DISTILLERY_MODEL_CACHE"] = str(Path(tmp) / "model-cache")
        os.environ["DISTILLERY_SERVING_AUTH_TTL"] = "3600"  # the token is looked up once, as under a flood
        try:
            report = run(args, Path(tmp))
        finally:
            if redis is not None:
                redis.stop()

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"refusal-cost-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(path)


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import override_settings, setup_databases, teardown_databases
    from rest_framework.authtoken.models import Token

    from config.asgi import application
    from jobs.api.throttles import ClassifyRateThrottle
    from jobs.registry import services as registry
    from jobs.serving import engines
    from mlcore.config import TrainConfig
    from mlcore.data import TextDataset
    from mlcore.testing import make_tiny_bert, sentiment_rows
    from mlcore.train import finetune

    rows = sentiment_rows(160)
    names = sorted({label for _, label in rows})
    data = TextDataset([t for t, _ in rows], [names.index(label) for _, label in rows], names)
    model_dir = tmp / "model"
    finetune(data, str(make_tiny_bert(tmp / "tiny-bert")), model_dir, TrainConfig(epochs=1, max_length=32))

    databases = setup_databases(verbosity=0, interactive=False)
    try:
        users = get_user_model().objects
        answered, refused = users.create_user("answered"), users.create_user("refused")
        for user in (answered, refused):
            registry.import_model(user, model_dir, name="tiny", promote_it=True)
        tokens = {user: Token.objects.create(user=user).key for user in (answered, refused)}
        # The refused user's window is full before its first request; the answered one's rate is out of reach.
        rate = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"classify": "10000000/day"}}
        override_settings(REST_FRAMEWORK=rate).enable()  # DRF's settings follow Django's setting_changed
        throttle = ClassifyRateThrottle()
        cache.set(throttle.window_key(refused.pk)[0].split(":", 2)[2], throttle.num_requests, 86_401)

        async def measure_all() -> dict[str, list[float]]:
            found: dict[str, list[float]] = {"429": [], "200": [], "401": []}
            for r in range(args.rounds):
                found["429"].append(await cpu_per_request(application, tokens[refused], args.requests, 429))
                found["200"].append(await cpu_per_request(application, tokens[answered], args.requests, 200))
                found["401"].append(await cpu_per_request(application, "no-such-token", args.requests, 401))
                print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} us" for k, v in found.items()), flush=True)
            return found

        rounds = asyncio.run(measure_all())
        database = connection.vendor
        engines.reset()
    finally:
        connection.close()
        teardown_databases(databases, verbosity=0)

    summary = {status: statistics.median(values) for status, values in rounds.items()}
    print(", ".join(f"{status}: {us:.1f} us CPU/request" for status, us in summary.items()))
    print(f"a 429 costs {summary['429'] / summary['200']:.3f} of a 200")
    return {
        "requests": args.requests, "database": database, "redis": settings.REDIS_URL, "cores": os.cpu_count(),
        "cpu_us_per_request": rounds, "median_cpu_us": summary,
    }  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
