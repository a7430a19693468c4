"""How much the batch order moves test accuracy: the engine's teacher, study recipe, quick rows, over seeds.

    python -m bench.order_noise [--seeds 42 43 44] [--arms grouped plain baseline] [--out DIR]

For each seed, on bench-train's quick rows for that seed (1,500 train / 500 valid / 1,000 test IMDB rows at
max_length 128), trains the bundled all-MiniLM-L6-v2 for the study's one epoch (24 steps):
  grouped   the engine with length-grouped batches (group_by_length true, its default before "auto");
  plain     the engine with a plain seeded shuffle (group_by_length false);
  baseline  the study's loop (bench/baseline.py), its own DataLoader shuffle.
tests/test_study_equivalence.py shows the engine's steps equal the study loop's given the same order, so the
arms differ by their batch order only. Prints each run and per arm the mean and spread of test accuracy, and
writes JSON (bench/runs/ by default) whose path is the last line printed. Accuracy only: throughput is
bench-train's job.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import train_bench
from bench.baseline import StudyConfig, finetune_baseline
from mlcore.catalogue import resolve_model
from mlcore.config import TrainConfig

ARMS = ("grouped", "plain", "baseline")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.order_noise", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--train-file", type=Path, default=train_bench.DEFAULT_TRAIN_FILE)
    p.add_argument("--test-file", type=Path, default=train_bench.DEFAULT_TEST_FILE)
    p.add_argument("--train-rows", type=int, help="default: bench-train's quick rows")
    p.add_argument("--valid-rows", type=int)
    p.add_argument("--test-rows", type=int)
    p.add_argument("--out", type=Path, default=train_bench.DEFAULT_OUT)
    return p.parse_args(argv)


def run_arm(arm: str, splits: dict, model: str, seed: int, folder: Path) -> dict[str, float]:
    """One training: its test and valid accuracy and average training loss."""
    if arm == "baseline":
        figures = finetune_baseline(
            splits["train"], splits["valid"], splits["test"], model, folder, StudyConfig(seed=seed, device="cpu")
        )
        return {k: figures[k] for k in ("test_accuracy", "valid_accuracy", "avg_train_loss")}
    from mlcore.train import finetune

    config = TrainConfig(
        seed=seed, valid_fraction=splits["valid_fraction"], test_fraction=0.0, device="cpu", precision="fp32",
        group_by_length=arm == "grouped",
    )  # fmt: skip
    result = finetune(splits["pool"], model, folder, config, test_dataset=splits["test"], resume=False)
    m = result.metrics
    return {
        "test_accuracy": m["test/accuracy"], "valid_accuracy": m["val/accuracy"], "avg_train_loss": m["train/avg_loss"]
    }


def summary(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Per arm: mean and sample standard deviation of test accuracy, and the number of seeds."""
    out = {}
    for arm in dict.fromkeys(r["arm"] for r in runs):
        values = [r["test_accuracy"] for r in runs if r["arm"] == arm]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        out[arm] = {"mean_test_accuracy": statistics.fmean(values), "stdev": spread, "seeds": len(values)}
    return out


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    model = resolve_model(args.model)
    runs: list[dict] = []
    for seed in args.seeds:
        bench_args = train_bench.parse_args([
            "--quick", "--seed", str(seed), "--train-file", str(args.train_file), "--test-file", str(args.test_file),
            *(f"--{k}-rows={v}" for k, v in (("train", args.train_rows), ("valid", args.valid_rows),
                                             ("test", args.test_rows)) if v is not None),
        ])  # fmt: skip
        rows, _ = train_bench.row_counts(bench_args)
        splits = train_bench.load_splits(bench_args, rows)
        for arm in args.arms:
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as folder:
                figures = run_arm(arm, splits, model, seed, Path(folder) / "model")
            runs.append({"seed": seed, "arm": arm, **figures, "seconds": time.perf_counter() - started})
            print(f"seed {seed} {arm:8} test {figures['test_accuracy']:.4f} valid {figures['valid_accuracy']:.4f}")
    result = {
        "rows": {"train": len(splits["train"]), "valid": len(splits["valid"]), "test": len(splits["test"])},
        "runs": runs,
        "summary": summary(runs),
        "machine": train_bench.machine_info(torch.device("cpu")),
    }
    for arm, s in result["summary"].items():
        print(f"{arm:8} mean test accuracy {s['mean_test_accuracy']:.4f} +- {s['stdev']:.4f} over {s['seeds']} seeds")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"order-noise-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(path)
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
