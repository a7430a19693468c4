"""The student the serving benchmark serves: the bundled all-MiniLM-L6-v2 cut to every other layer (3 of 6),
fine-tuned on a prefix of the IMDB train file. Built once and cached under var/bench/ (a few minutes on 2 CPU
cores); `--model FOLDER` on the benchmark serves any other trained folder instead.

    .venv/bin/python -m bench.serve_student [--rows 6000] [--out var/bench/serve-student] [--test]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from mlcore.catalogue import BUNDLED_ID
from mlcore.config import TrainConfig
from mlcore.data import read_table
from mlcore.loading import load_for_training
from mlcore.students import derive_student
from mlcore.train import finetune

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "imdb"
DEFAULT_OUT = REPO / "var" / "bench" / "serve-student"
RECIPE = dict(
    max_length=128, batch_size=32, learning_rate=1e-4, scheduler="linear", warmup_ratio=0.06, epochs=2,
    truncation="head_tail", valid_fraction=0.1, test_fraction=0.0, seed=42,
)


def ensure_student(out: Path = DEFAULT_OUT, rows: int = 6000, train_file: Path = DATA / "train.csv.gz") -> Path:
    """The cached student folder, trained first if it is missing (or was built with other settings)."""
    stamp = {"rows": rows, "train_file": str(train_file), **RECIPE}
    marker = out / "serve-student.json"
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return out
    table, _ = read_table(train_file)
    # The train file is sorted by label: take a stratified prefix so both classes are there.
    by_label: dict[int, list[int]] = {}
    for i in range(len(table)):
        by_label.setdefault(table.labels[i], []).append(i)
    picked = [i for group in zip(*by_label.values(), strict=False) for i in group][:rows]
    data = table.subset(picked)
    with tempfile.TemporaryDirectory(prefix="distillery-student-base-") as base:
        teacher, tokenizer = load_for_training(BUNDLED_ID, data.label_names)
        student = derive_student(teacher)  # every other layer
        student.save_pretrained(base)
        tokenizer.save_pretrained(base)
        started = time.perf_counter()
        result = finetune(data, base, out, TrainConfig(**RECIPE))
    stamp_out = dict(stamp, valid_accuracy=result.metrics.get("val/accuracy"), seconds=time.perf_counter() - started)
    print(f"serve student: {json.dumps(stamp_out)}", file=sys.stderr)
    marker.write_text(json.dumps(stamp))
    return out


def holdout(rows: int = 1000, train_file: Path = DATA / "train.csv.gz"):
    """Train rows the student never saw (the last of each class; ensure_student takes the first), for
    choosing its serving precision as a training job would, on validation rows, not on the test texts."""
    table, _ = read_table(train_file)
    by_label: dict[int, list[int]] = {}
    for i in range(len(table)):
        by_label.setdefault(table.labels[i], []).append(i)
    per_label = rows // len(by_label)
    tails = [group[-per_label:] for group in by_label.values()]
    return table.subset([i for group in zip(*tails, strict=True) for i in group])


def test_accuracy(folder: Path, test_file: Path = DATA / "test.csv.gz", runtime: str = "onnx") -> dict:
    """The student's accuracy on every row of the test file (fp32, batches of 32; ONNX Runtime by default)."""
    from mlcore.inference import Classifier, accuracy
    from mlcore.onnxrt import runtime_for

    table, _ = read_table(test_file)
    with tempfile.TemporaryDirectory(prefix="distillery-student-onnx-") as exports:
        classifier = Classifier.load(folder, runtime=runtime_for(runtime), onnx_dir=exports)
        started = time.perf_counter()
        score = accuracy(classifier, table, chunk=512)
    return {"rows": len(table), "accuracy": score, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--test", action="store_true", help="then print its accuracy on the whole test file")
    args = parser.parse_args()
    folder = ensure_student(args.out, args.rows)
    if args.test:
        print(json.dumps(test_accuracy(folder)), file=sys.stderr)
    print(folder)


if __name__ == "__main__":
    main()
