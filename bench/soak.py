"""Soak benchmark: a classify flood while a training job streams to websocket clients, on the whole stack.

    python -m bench.soak [--seconds 60] [--clients 50] [--ws-clients 10] [--baseline-seconds 15]
                         [--model minilm|tiny] [--quick] [--out bench/results]

It starts the platform as `make up` does (`platform/embedded.py serve`: embedded Redis, SQLite, one Celery
worker, uvicorn) in a temporary folder, logs in as its first user, uploads a dataset, fine-tunes a model
through the worker and promotes it, warms classify up, then launches a long fine-tune and follows its stream
with --ws-clients websocket clients. It measures that job's training steps/s alone (--baseline-seconds), then
runs --clients closed-loop classify clients (bench/loadgen.py) for --seconds, cancels the job and checks:
  zero errors          every classify answer a 2xx or a 429 (the rate's refusal); no 5xx, timeout, broken link
  every seq once       each websocket client got the job's points 1..N exactly once, in order, as
                       GET /api/jobs/{id}/metrics/ lists them, and the job's end
  web RSS flat         the web server's resident memory at the flood's end within 10% of its start
  training ran         the job was still running when the flood ended
  no restarts          the launcher restarted none of its children (web, workers, Redis) meanwhile
It reports the 200s' p50/p99, requests by status code, the job's steps/s during the flood over its baseline,
the CPU each process took and the web server's RSS, as JSON in --out (soak-<timestamp>.json, the last line
printed); the exit status is 1 when a property fails. The launcher's own settings pass through, and the JSON
records which of them were set (LAUNCHER_SETTINGS), so that runs with and without them can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import platform
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procstat, soak_report
from bench.embedded_stack import ADMIN, ROLES, Api, EmbeddedStack
from bench.loadgen import LoadResult, build_request, run_load
from bench.wsclients import FINISHED, StreamLog, follow

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results"
IMDB = BENCH_DIR.parent.parent / "shared" / "data" / "imdb"
CLASSIFY_PATH = "/api/classify/"
# The launcher's settings that divide the machine between serving and training; passed through when set.
LAUNCHER_SETTINGS = ("DISTILLERY_TRAINING_NICE", "DISTILLERY_WEB_CPUS", "DISTILLERY_TRAINING_CPUS")
FULL = {"seconds": 60.0, "clients": 50, "ws_clients": 10, "baseline_seconds": 15.0, "warmup_seconds": 5.0}
QUICK = {"seconds": 10.0, "clients": 8, "ws_clients": 2, "baseline_seconds": 4.0, "warmup_seconds": 2.0}
TRAINING_POINTS_FIRST = 3  # train points the stream must have carried before the baseline window opens
JOB_TIMEOUT = 900.0  # seconds for the serving model's fine-tune (MiniLM on 2 cores: about a minute)
FIRST_CLASSIFY_TIMEOUT = 300.0  # seconds for the web server to load the model (and export it to ONNX if needed)
END_TIMEOUT = 120.0  # seconds for the cancelled job's end to reach every websocket client
RSS_EVERY = 1.0  # seconds between two samples of the web server's RSS during the flood
# Settings the stack gets unless the caller's environment sets them: no throttling (the flood is model work,
# as in bench-serve) and a short speed measurement after training (the soak does not read it).
STACK_DEFAULTS = {"DISTILLERY_CLASSIFY_RATE": "100000000/min", "DISTILLERY_SPEED_SECONDS": "1", "HF_HUB_OFFLINE": "1"}


@dataclass
class Profile:
    """The models and data of a run: the served model's fine-tune and the long job's."""

    base_model: str  # a catalogue id, or "tiny": a tiny random BERT written under DISTILLERY_MODEL_ROOTS
    serve_rows: int
    serve_params: dict[str, Any]
    train_rows: int
    train_params: dict[str, Any]  # many epochs, no validation or checkpoints: steady steps until cancelled
    imdb: bool  # texts from the IMDB files when they are there, else the synthetic reviews of mlcore.testing


# The long job trains steadily until it is cancelled: the most epochs, and no validation, test or checkpoint
# pauses that would show up as a slowdown in a window.
LONG_JOB = {"epochs": 100, "valid_fraction": 0.0, "test_fraction": 0.0, "checkpoint_every": 0}


PROFILES = {
    # The bundled MiniLM: the README's soak figures. The long job's steps are short (batch 8 at 64 tokens, about
    # 0.2 s alone on 2 cores) so that a window holds enough of them to time; the served model keeps 128 tokens.
    "minilm": Profile(
        base_model="all-MiniLM-L6-v2",
        serve_rows=192,
        serve_params={"epochs": 1, "batch_size": 16, "max_length": 128, "learning_rate": 5e-5, "max_eval_samples": 32},
        train_rows=2000,
        train_params={"batch_size": 8, "max_length": 64, "learning_rate": 2e-5},
        imdb=True,
    ),
    # A tiny BERT: the smoke test (seconds per job).
    "tiny": Profile(
        base_model="tiny",
        serve_rows=160,
        serve_params={"epochs": 3, "batch_size": 16, "max_length": 32, "learning_rate": 3e-3},
        train_rows=800,
        train_params={"batch_size": 8, "max_length": 32, "learning_rate": 1e-3},
        imdb=False,
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="the smoke test: " + ", ".join(f"{k} {v:g}" for k, v in QUICK.items())
    )
    p.add_argument("--seconds", type=float, help=f"seconds of classify flood (default {FULL['seconds']:g})")
    p.add_argument("--clients", type=int, help=f"concurrent classify clients (default {FULL['clients']})")
    p.add_argument("--ws-clients", type=int, help=f"websocket clients on the job (default {FULL['ws_clients']})")
    p.add_argument("--baseline-seconds", type=float, help="seconds the job's steps/s is measured without the flood")
    p.add_argument("--warmup-seconds", type=float, help="seconds of classify at full concurrency before measuring")
    p.add_argument("--model", choices=sorted(PROFILES), help="models and data (default minilm; --quick: tiny)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the JSON (default bench/results/)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.model = args.model or ("tiny" if args.quick else "minilm")
    if args.seconds <= 0 or args.baseline_seconds <= 0 or args.warmup_seconds < 0:
        p.error("--seconds and --baseline-seconds must be positive, --warmup-seconds not negative")
    if args.clients < 1 or args.ws_clients < 1:
        p.error("--clients and --ws-clients must be at least 1")
    return args


# --- data --------------------------------------------------------------------------------------------------


def labelled_rows(profile: Profile, n: int, seed: int) -> list[tuple[str, str]]:
    """n (text, label) rows: a seeded sample of IMDB's train file, or mlcore.testing's synthetic reviews."""
    path = IMDB / "train.csv.gz"
    if profile.imdb and path.exists():
        from mlcore.data import read_table

        table, _ = read_table(path)
        picked = random.Random(seed).sample(range(len(table.texts)), n)
        return [(table.texts[i], table.label_names[table.labels[i]]) for i in picked]
    from mlcore.testing import sentiment_rows

    return sentiment_rows(n, seed=seed)


def classify_texts(profile: Profile, n: int = 1000, seed: int = 42) -> tuple[list[str], str]:
    """The flood's texts and where they came from: bench-serve's short IMDB sentences, or synthetic reviews."""
    path = IMDB / "test.csv.gz"
    if profile.imdb and path.exists():
        from bench.serve_bench import load_sets

        return load_sets(path, ["short"], n, seed)["short"].texts, "imdb-short"
    from mlcore.testing import sentiment_rows

    return [text for text, _ in sentiment_rows(n, seed=seed)], "synthetic"


def csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    return out.getvalue().encode()


# --- setting up: a promoted model ----------------------------------------------------------------------------


def wait_for_job(api: Api, job_id: int, timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
    """Poll the job until it has finished; SystemExit unless it succeeded."""
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/api/jobs/{job_id}/")
        if job["status"] in FINISHED:
            if job["status"] != "succeeded":
                raise SystemExit(f"job {job_id} {job['status']}: {job.get('error')}")
            return job
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} still {job['status']} after {timeout:g} s")
        time.sleep(0.5)


def launch(api: Api, dataset: int, base_model: str, params: dict[str, Any]) -> dict[str, Any]:
    return api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset, "base_model": base_model, "params": params})


def promoted_model(api: Api, profile: Profile, base_model: str) -> dict[str, Any]:
    """Upload a small dataset, fine-tune on it in the worker, promote the model; what it took."""
    started = time.perf_counter()
    rows = labelled_rows(profile, profile.serve_rows, seed=1)
    dataset = api.upload("/api/datasets/", {"name": "soak-serve"}, "serve.csv", csv_bytes(rows))
    job = wait_for_job(api, launch(api, dataset["id"], base_model, profile.serve_params)["id"])
    # The override: a tiny run's figures may fail the promote guard (its bounds are for models that ship).
    model = api.post(f"/api/models/{job['result_model']}/promote/", {"override": True, "reason": "soak"})
    return {
        "job": job["id"],
        "model": model["id"],
        "serving_precision": model.get("serving_precision"),
        "test_accuracy": (model.get("metrics") or {}).get("test/accuracy"),
        "seconds": time.perf_counter() - started,
    }


# --- measuring ---------------------------------------------------------------------------------------------


class CpuSample:
    """CPU seconds used so far by each role of the stack, by this process and by the whole machine."""

    def __init__(self, stack: EmbeddedStack) -> None:
        self.wall = time.perf_counter()
        self.roles = {role: procstat.cpu_seconds(stack.processes(role)) for role in ROLES}
        self.bench = time.process_time()
        self.machine = procstat.machine_busy_seconds()

    def cores_since(self, before: CpuSample) -> dict[str, float]:
        """Cores (CPU seconds per second) each role, the bench and everything else used in between."""
        wall = self.wall - before.wall
        out = {role: (self.roles[role] - before.roles[role]) / wall for role in self.roles}
        out["bench"] = (self.bench - before.bench) / wall
        out["other"] = max(0.0, (self.machine - before.machine) / wall - sum(out.values()))
        return out


def classify_requests(port: int, token: str, texts: list[str]) -> list[bytes]:
    headers = {"Authorization": f"Token {token}"}
    return [build_request("127.0.0.1", port, CLASSIFY_PATH, {"text": t}, headers) for t in texts]


async def warm_up(port: int, token: str, texts: list[str], args: argparse.Namespace) -> LoadResult:
    """One classify, which waits for the web server to load the model (a promote's preload may be at it), then
    --warmup-seconds at full concurrency; both counted together."""
    requests = classify_requests(port, token, texts)
    first = await run_load("127.0.0.1", port, requests, 1, order=[0], timeout=FIRST_CLASSIFY_TIMEOUT)
    rest = await run_load("127.0.0.1", port, requests, args.clients, seconds=args.warmup_seconds)
    if first.ok + rest.ok == 0:
        raise SystemExit(f"no warm-up classify succeeded: {dict(first.errors + rest.errors)}")
    rest.latencies += first.latencies
    rest.errors.update(first.errors)
    rest.statuses.update(first.statuses)
    return rest


async def wait_until(condition, timeout: float, what: str, every: float = 0.2) -> None:
    """Poll `condition()` until it is true; SystemExit naming `what` past the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)


async def soak(
    args: argparse.Namespace,
    stack: EmbeddedStack,
    api: Api,
    texts: list[str],
    train_dataset: int,
    base_model: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Launch the long job, follow it, measure its baseline, flood classify, cancel it; the raw observations."""
    job = await asyncio.to_thread(launch, api, train_dataset, base_model, params)
    logs = [StreamLog(i) for i in range(args.ws_clients)]
    connected = [asyncio.Event() for _ in logs]
    streams = [
        asyncio.create_task(follow(stack.port, job["id"], api.token, log, event))
        for log, event in zip(logs, connected, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 60)
    failed = [log.error for log in logs if log.error]
    if failed:
        raise SystemExit(f"websocket clients could not connect: {failed[:3]}")

    # 1. The job alone: from its first few steps (model loaded, data tokenised) for --baseline-seconds.
    await wait_until(
        lambda: logs[0].train_points() >= TRAINING_POINTS_FIRST or logs[0].final_status is not None,
        JOB_TIMEOUT,
        f"job {job['id']}'s first training steps",
    )
    if logs[0].final_status is not None:
        raise SystemExit(f"job {job['id']} ended ({logs[0].final_status}) before it trained")
    cpu0, t0 = CpuSample(stack), time.time()
    await asyncio.sleep(args.baseline_seconds)  # the measurement window itself, not a wait for anything
    cpu1, t1 = CpuSample(stack), time.time()

    # 2. The flood, the web server's RSS sampled meanwhile.
    web = stack.pids["web"]
    rss = [(time.time(), procstat.rss_bytes(web))]
    requests = classify_requests(stack.port, api.token, texts)
    flood = asyncio.create_task(run_load("127.0.0.1", stack.port, requests, args.clients, seconds=args.seconds))
    t2 = time.time()
    while not flood.done():
        await asyncio.wait({flood}, timeout=RSS_EVERY)
        rss.append((time.time(), procstat.rss_bytes(web)))
    load = flood.result()
    cpu2, t3 = CpuSample(stack), time.time()
    status_at_end = (await asyncio.to_thread(api.get, f"/api/jobs/{job['id']}/"))["status"]

    # 3. Cancel, and let every client see the job's end.
    await asyncio.to_thread(api.post, f"/api/jobs/{job['id']}/cancel/", {})
    _, pending = await asyncio.wait(streams, timeout=END_TIMEOUT)
    for task in pending:
        task.cancel()
    for log in logs:
        if log.final_status is None and log.error is None:
            log.error = f"no end of the job within {END_TIMEOUT:g} s of its cancel"
    metrics = await asyncio.to_thread(api.get, f"/api/jobs/{job['id']}/metrics/")
    final = await asyncio.to_thread(api.get, f"/api/jobs/{job['id']}/")
    return {
        "job": final,
        "status_at_flood_end": status_at_end,
        "logs": logs,
        "metrics": metrics,
        "load": load,
        "rss": rss,
        "windows": {"baseline": (t0, t1), "flood": (t2, t3)},
        "cpu": {"baseline": cpu1.cores_since(cpu0), "flood": cpu2.cores_since(cpu1)},
    }


# --- the run -----------------------------------------------------------------------------------------------


def stack_env(workdir: Path, profile: Profile) -> dict[str, str]:
    env = {k: os.environ.get(k, v) for k, v in STACK_DEFAULTS.items()}
    if profile.base_model == "tiny":
        env["DISTILLERY_MODEL_ROOTS"] = str(workdir / "model-roots")
    return env


def main(argv: list[str] | None = None) -> tuple[Path, bool]:
    """Run the soak; the JSON's path and whether every property held."""
    args = parse_args(argv)
    started = time.perf_counter()
    profile = PROFILES[args.model]
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }
    say(
        f"soak: {args.clients} classify clients for {args.seconds:g} s, {args.ws_clients} websocket clients, "
        f"model {args.model}; launcher settings: "
        + (", ".join(f"{k}={os.environ[k]}" for k in LAUNCHER_SETTINGS if k in os.environ) or "none")
    )
    texts, text_source = classify_texts(profile)
    train_rows = labelled_rows(profile, profile.train_rows, seed=2)
    with (
        tempfile.TemporaryDirectory(prefix="distillery-soak-") as tmp,
        EmbeddedStack(Path(tmp), stack_env(Path(tmp), profile)) as stack,
    ):
        base_model = profile.base_model
        if base_model == "tiny":
            from mlcore.testing import make_tiny_bert

            base_model = str(make_tiny_bert(Path(tmp) / "model-roots" / "tiny-bert"))
        start_s = stack.start()
        say(f"soak: the stack answered on port {stack.port} in {start_s:.1f} s; processes {stack.pids}")
        api = Api(stack.port)
        api.login(ADMIN, stack.password)
        served = promoted_model(api, profile, base_model)
        say(f"soak: model {served['model']} promoted (job {served['job']}, {served['seconds']:.1f} s)")
        warmup = asyncio.run(warm_up(stack.port, api.token, texts, args))
        say(f"soak: warm-up {warmup.requests} requests {dict(warmup.statuses)}")
        dataset = api.upload("/api/datasets/", {"name": "soak-train"}, "train.csv", csv_bytes(train_rows))
        params = {**profile.train_params, **LONG_JOB}
        observed = asyncio.run(soak(args, stack, api, texts, dataset["id"], base_model, params))
        observed["stack_env"] = {
            k: v
            for k, v in sorted(stack.env.items())
            if k in STACK_DEFAULTS or k in LAUNCHER_SETTINGS or k.startswith("DISTILLERY_SERVING_")
        }
        now = stack.current_pids()
        observed["restarted"] = sorted(role for role, pid in stack.pids.items() if now.get(role) != pid)
        processes = {role: [procstat.scheduling(p) for p in stack.processes(role)] for role in stack.pids}
        stack_log = stack.log_tail(3000)
    result = soak_report.build(
        args,
        observed,
        warmup,
        served,
        processes,
        launcher={k: os.environ[k] for k in LAUNCHER_SETTINGS if k in os.environ},
        machine=machine | {"loadavg_end": os.getloadavg(), "bench_seconds": time.perf_counter() - started},
        stack_start_s=start_s,
        text_source=text_source,
    )
    for line in soak_report.summary_lines(result):
        say(line)
    if not result["passed"]:
        say("soak: the stack's log ended:\n" + stack_log)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(soak_report.dumps(result), encoding="utf-8")
    say(str(path))
    return path, result["passed"]


def say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the with block stops the stack.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    sys.exit(0 if main(sys.argv[1:])[1] else 1)
