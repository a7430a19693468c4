"""Data-parallel step time on CPU: one fine-tune run on 1 process against the same run with devices=2 (two gloo
processes, mlcore.parallel), in the same bench run, on the same rows and seed.

    python -m bench.ddp_bench [--model all-MiniLM-L6-v2] [--rows 320] [--batch-size 32] [--max-length 128]
                              [--devices 2] [--rounds 3] [--out DIR]

The step time is the median wall time between two consecutive on_batch_end reports of rank 0 (the whole step:
data, forward, backward, the gradient all-reduce, the optimiser and the metrics' all-reduce), the first
WARMUP_STEPS left out, over all steps of --rounds rounds (and each setup's quietest round apart); each round runs
every setup once, in turn: one process on every core, one process on cores // N threads, and N processes on
cores // N threads each (mlcore.parallel's share), so the N-process run and the first baseline use the whole
machine. On a CPU, data parallelism splits the same cores N ways and adds the all-reduces, so it is not expected
to be faster: what devices > 1 buys is GPUs.
The run's start (N - 1 more Python processes importing torch and loading the model) is reported apart.
The texts are sentiment_rows' reviews said six times (about 100 tokens). Prints and writes JSON; the last line
printed is its path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.train_bench import DEFAULT_OUT
from mlcore.callbacks import Callback
from mlcore.catalogue import resolve_model
from mlcore.config import TrainConfig
from mlcore.data import TextDataset
from mlcore.testing import sentiment_rows
from mlcore.train import finetune

WARMUP_STEPS = 2  # steps left out of the median: the first pays for allocations and one-off setup


class StepClock(Callback):
    """When each step ended on rank 0, and when the first one did."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ends: list[float] = []

    def on_batch_end(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
        self.ends.append(time.perf_counter())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="catalogue id, hub id or model folder")
    p.add_argument("--rows", type=int, default=320, help="training rows (one epoch)")
    p.add_argument("--batch-size", type=int, default=32, help="the global batch, split across the processes")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--devices", type=int, default=2, help="processes of the data-parallel run")
    p.add_argument("--rounds", type=int, default=3, help="rounds, each running every setup once, in turn")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder the JSON report goes to")
    args = p.parse_args(argv)
    if "OMP_NUM_THREADS" in os.environ:
        p.error("unset OMP_NUM_THREADS: the bench sets each setup's threads itself")
    report = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ddp-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    shown = (
        "step_seconds",
        "ratio",
        "best_round_step_seconds",
        "best_round_ratio",
        "start_seconds",
        "load_average_1min",
    )
    print(json.dumps({k: report[k] for k in shown}, indent=1))
    print(path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = [(" ".join([text] * 6), label) for text, label in sentiment_rows(args.rows + 20, seed=0)]
    data = TextDataset.from_rows(rows)
    model = str(resolve_model(args.model))
    base = {
        "batch_size": args.batch_size, "max_length": args.max_length, "device": "cpu", "epochs": 1,
        "valid_fraction": 10 / len(rows), "test_fraction": 10 / len(rows), "group_by_length": False,
    }  # fmt: skip
    cores = os.cpu_count() or 1
    shared = max(1, cores // args.devices)
    # name: (devices, threads per process); the single-process baselines in the same run, in turn with it, so
    # that a neighbour's load falls on all of them alike.
    setups = {"1": (1, cores), f"1@{shared}threads": (1, shared), str(args.devices): (args.devices, shared)}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in setups}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="distillery-ddp-bench-") as tmp:
        for round_ in range(args.rounds):
            for name, (devices, threads) in setups.items():
                config = TrainConfig(**base, devices=devices)
                runs[name].append(_timed(data, model, Path(tmp) / f"{round_}-{devices}-{threads}", config, threads))
                load.append(os.getloadavg()[0])
    steps = {name: statistics.median(g for r in rs for g in r["step_seconds"]) for name, rs in runs.items()}
    # Each setup's quietest round (the lowest of its rounds' medians): on a machine shared with other work, a
    # neighbour's burst slows whichever setup runs during it, the one on every core most (its threads wait for
    # each other at every operator), so this is the comparison of the setups themselves.
    best = {name: min(statistics.median(r["step_seconds"]) for r in rs) for name, rs in runs.items()}
    return {
        "bench": "ddp",
        "model": args.model,
        "train_rows": args.rows,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "devices": args.devices,
        "rounds": args.rounds,
        "setups": {name: {"processes": d, "threads_per_process": t} for name, (d, t) in setups.items()},
        "step_seconds": {name: round(value, 4) for name, value in steps.items()},
        # > 1: the data-parallel run's step is slower than one process's on all the cores
        "ratio": round(steps[str(args.devices)] / steps["1"], 3),
        "ratio_to_same_threads": round(steps[str(args.devices)] / steps[f"1@{shared}threads"], 3),
        "best_round_step_seconds": {name: round(value, 4) for name, value in best.items()},
        "best_round_ratio": round(best[str(args.devices)] / best["1"], 3),
        "start_seconds": {
            name: round(statistics.median(r["start_seconds"] for r in rs), 2) for name, rs in runs.items()
        },
        "final_loss": {name: [round(r["final_loss"], 5) for r in rs] for name, rs in runs.items()},
        "load_average_1min": [round(x, 2) for x in load],  # before the first run and after each
        "runs": runs,
        "machine": {
            "cpus": cores,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },  # fmt: skip
    }


def _timed(data: TextDataset, model: str, out: Path, config: TrainConfig, threads: int) -> dict[str, Any]:
    """One run's step times; a single process on `threads` threads (OMP_NUM_THREADS, which finetune leaves
    alone), a data-parallel one on its own share (mlcore.parallel)."""
    saved = torch.get_num_threads()
    if config.devices == 1:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    try:
        clock = StepClock()
        result = finetune(data, model, out, config, clock)
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)
        torch.set_num_threads(saved)
    gaps = [b - a for a, b in zip(clock.ends, clock.ends[1:], strict=False)][WARMUP_STEPS:]
    return {
        "steps": result.steps,
        "step_seconds": gaps,
        "start_seconds": clock.ends[0] - clock.started,  # to the end of the first step
        "final_loss": result.metrics["train/avg_loss"],
    }


if __name__ == "__main__":
    main()
