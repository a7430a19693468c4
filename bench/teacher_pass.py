"""Distillation with the teacher's logits from one pass before training against a teacher forward in every step.

    python -m bench.teacher_pass [--rows 800] [--epochs 2] [--device cpu] [--rounds 2] [--out DIR]

Fine-tunes the bundled all-MiniLM-L6-v2 for one epoch on 256 IMDB train rows (the teacher; its accuracy does
not matter here), then distils its every-other-layer student on `--rows` other rows, alternating the two
ways `--rounds` times in one process: "pass" is mlcore.distill as it is; "per_step" makes mlcore.distill find
no precomputed logits, so every step runs the teacher, the path the hidden-state loss takes. Training
samples/s count from on_train_begin to the last batch (the pass included). Prints and writes JSON with each
round, the medians and their ratio; the last line printed is the file's path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mlcore.distill
from bench.train_bench import DEFAULT_OUT, DEFAULT_TRAIN_FILE, machine_info
from mlcore.callbacks import Callback
from mlcore.catalogue import resolve_model
from mlcore.config import DistillConfig, TrainConfig
from mlcore.data import read_table
from mlcore.devices import resolve_device
from mlcore.train import finetune


class Clock(Callback):
    def on_train_begin(self, info: dict[str, Any]) -> None:
        self.begin = self.end = time.perf_counter()

    def on_batch_end(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
        self.end = time.perf_counter()
        self.last_loss = metrics["train/loss"]


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=800, help="distillation rows (5%% held out for validation)")
    p.add_argument("--epochs", type=int, default=2, help="student epochs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=2, help="times each way runs, alternating")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)

    data, _ = read_table(DEFAULT_TRAIN_FILE)
    settings = dict(max_length=128, batch_size=32, learning_rate=5e-5, device=args.device, valid_fraction=0.05)
    settings |= {"test_fraction": 0.0}
    rows = data.subset(range(1000, 1000 + args.rows))
    results: dict[str, list[float]] = {"pass": [], "per_step": []}
    last_losses: dict[str, list[float]] = {"pass": [], "per_step": []}
    with tempfile.TemporaryDirectory() as tmp:
        teacher = Path(tmp) / "teacher"
        base = resolve_model("all-MiniLM-L6-v2")
        finetune(data.subset(range(256)), base, teacher, TrainConfig(**settings), Callback())
        precomputed = mlcore.distill.logits_by_row
        try:
            for r in range(args.rounds):
                for way in results:
                    mlcore.distill.logits_by_row = precomputed if way == "pass" else (lambda *a, **k: None)
                    clock = Clock()
                    config = DistillConfig(**settings, epochs=args.epochs)
                    result = mlcore.distill.distill(rows, teacher, Path(tmp) / way, config, clock, resume=False)
                    speed = result.train_rows * args.epochs / (clock.end - clock.begin)
                    results[way].append(speed)
                    last_losses[way].append(clock.last_loss)
                    print(f"round {r + 1} {way}: {speed:.2f} samples/s, last loss {clock.last_loss:.4f}", flush=True)
        finally:
            mlcore.distill.logits_by_row = precomputed

    medians = {way: statistics.median(speeds) for way, speeds in results.items()}
    report = {
        "rows": args.rows, "epochs": args.epochs, "device": args.device,
        "machine": machine_info(resolve_device(args.device)),
        "samples_per_s": results, "last_batch_loss": last_losses, "median_samples_per_s": medians,
        "speedup": medians["pass"] / medians["per_step"],
    }  # fmt: skip
    print(f"teacher pass / per-step teacher: {report['speedup']:.2f}x training samples/s")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"teacher-pass-{time.strftime('%Y%m%d-%H%M%S')}-{args.device}.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
