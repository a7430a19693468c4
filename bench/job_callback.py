"""What reporting a job's metrics costs its training thread: inline, as JobCallback did, against its writer thread.

    python -m bench.job_callback [--steps 300] [--step-ms 12] [--rounds 2] [--out DIR]

A training job reports every batch: a MetricPoint row, a message to the job's channel group, the progress, and a
look at the cancel flag. Run inline that is an INSERT, a channels-redis send, an UPDATE and a SELECT per batch;
jobs.training.callback.JobCallback now leaves them to a thread of its own. This runs `--steps` steps of about
`--step-ms` milliseconds three ways: bare (no reporting), inline (lifecycle.record_metric, set_progress and
cancel_requested after each step) and writer (job_callback; the wait at the end for the last points to be saved
counts),
for two kinds of step: "python", fixed Python work that holds the GIL (a launch-bound GPU step, the worst case
for a second thread), and "wait", a sleep that releases it (a GPU-bound step). Each way's cost is its extra
milliseconds per step over bare, the median over `--rounds` rounds.

The database is the configured one (DATABASE_URL; SQLite under var/ when unset), in a scratch test database that
Django creates and drops; Redis is REDIS_URL's, or a private one started for the run when it is unset. Prints
and writes JSON; the last line printed is its path.
"""

from __future__ import annotations

import argparse
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


def python_work(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i
    return total


def calibrate(step_ms: float) -> int:
    """Iterations of python_work that take about step_ms here."""
    start = time.perf_counter()
    python_work(200_000)
    return int(200_000 * step_ms / 1000 / (time.perf_counter() - start))


def measure(job: Any, steps: int, step: Any) -> dict[str, float]:
    from jobs.models import MetricPoint
    from jobs.training import lifecycle
    from jobs.training.callback import job_callback

    metrics = {"train/loss": 0.5, "train/accuracy": 0.75, "lr": 2e-5, "epoch": 0.1}
    seconds = {}

    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds["bare"] = time.perf_counter() - start

    seq = MetricPoint.objects.filter(job=job).count()
    start = time.perf_counter()
    for i in range(steps):
        step()
        lifecycle.record_metric(job, seq=seq + i + 1, step=i + 1, kind="train", values=metrics)
        lifecycle.set_progress(job, (i + 1) / steps)
        lifecycle.cancel_requested(job.pk)
    seconds["inline"] = time.perf_counter() - start

    start = time.perf_counter()
    with job_callback(job) as callback:
        for i in range(steps):
            callback.should_stop()
            step()
            callback.on_batch_end(i + 1, steps, metrics)
    seconds["writer"] = time.perf_counter() - start
    return seconds


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--step-ms", type=float, default=12.0, help="about how long one step takes")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="distillery-bench-") as tmp:
        redis = None
        if not os.environ.get("REDIS_URL"):
            redis = load_embedded().EmbeddedRedis(Path(tmp) / "redis")
            os.environ["REDIS_URL"] = redis.start()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        os.environ["MEDIA_ROOT"] = str(Path(tmp) / "media")
        try:
            report = run(args)
        finally:
            if redis is not None:
                redis.stop()

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"job-callback-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from jobs.models import Job

    databases = setup_databases(verbosity=0, interactive=False)
    try:
        user = get_user_model().objects.create_user("bench")
        job = Job.objects.create(owner=user, kind=Job.Kind.FINETUNE, params={}, status=Job.Status.RUNNING)
        iterations = calibrate(args.step_ms)
        kinds = {"python": lambda: python_work(iterations), "wait": lambda: time.sleep(args.step_ms / 1000)}
        rounds: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
        for r in range(args.rounds):
            for kind, step in kinds.items():
                seconds = measure(job, args.steps, step)
                rounds[kind].append(seconds)
                extra = {way: (seconds[way] - seconds["bare"]) / args.steps * 1000 for way in ("inline", "writer")}
                print(
                    f"round {r + 1}, {kind} steps: bare {seconds['bare'] / args.steps * 1000:.2f} ms/step, "
                    f"inline +{extra['inline']:.2f} ms, writer +{extra['writer']:.2f} ms",
                    flush=True,
                )
        database = connection.vendor
    finally:
        connection.close()
        teardown_databases(databases, verbosity=0)

    def extra_ms(kind: str, way: str) -> float:
        return statistics.median((s[way] - s["bare"]) / args.steps * 1000 for s in rounds[kind])

    summary = {kind: {way: extra_ms(kind, way) for way in ("inline", "writer")} for kind in rounds}
    for kind, ways in summary.items():
        print(f"{kind} steps: reporting costs inline +{ways['inline']:.2f} ms/step, writer +{ways['writer']:.2f}")
    return {
        "steps": args.steps, "step_ms": args.step_ms, "database": database, "redis": settings.REDIS_URL,
        "cores": os.cpu_count(), "seconds": rounds, "extra_ms_per_step": summary,
    }  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
