"""Training benchmark: the study's plain loop against Distillery's engine, teacher and student, side by side.

    python -m bench.train_bench [--quick | --full] [--max-length 128] [--device auto|cpu|cuda]
                                [--engine-recipe study|best] [--engine-group-by-length auto|true|false]
                                [--train-rows N --valid-rows N --test-rows N]
                                [--out DIR] [--skip-baseline]

In one run, on the same rows and seed:
  baseline_teacher  the study's loop (bench/baseline.py) fine-tunes the bundled all-MiniLM-L6-v2;
  baseline_student  its every-other-layer student, distilled the study's way in the same loop;
  trainer_teacher   transformers' Trainer fine-tunes the same base model (bench/trainer_run.py);
  engine_teacher    mlcore.train.finetune, same base model, same train/valid/test rows;
  engine_student    mlcore.distill.distill from engine_teacher.
All five are scored on the same valid rows (one fixed split of the train file's prefix) and the same test rows
(the test file's prefix): test_accuracy by the same fp32 code for every model (bench.baseline.accuracy; the
engine's own figure, in its training precision, is kept as test_accuracy_reported), and their CPU inference
speed is measured the same way (mlcore.evaluate, CPU, os.cpu_count() threads). Each run's training steps are
profiled (bench/efficiency.py): model FLOP/s against a matmul peak measured in the same run, and the share of
the steps spent outside the model. --batch-size and --learning-rate set every run's alike. The study's table
and the ratios are printed; everything goes to a JSON file (bench/runs/ by default) whose path is the last line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers

from bench.baseline import StudyConfig, accuracy, distill_baseline, finetune_baseline
from bench.efficiency import StepProfile, matmul_peak
from bench.procstat import cpu_seconds, machine_busy_seconds
from bench.trainer_run import finetune_trainer
from mlcore.callbacks import Callback
from mlcore.catalogue import resolve_model
from mlcore.config import DistillConfig, TrainConfig
from mlcore.data import TextDataset, read_table, split_dataset
from mlcore.devices import autocast_dtype, resolve_device
from mlcore.recipes import BEST

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR.parent.parent / "shared" / "data" / "imdb"
DEFAULT_TRAIN_FILE = DATA_DIR / "train.csv.gz"
DEFAULT_TEST_FILE = DATA_DIR / "test.csv.gz"
DEFAULT_OUT = BENCH_DIR / "runs"
RUN_NAMES = ("baseline_teacher", "baseline_student", "trainer_teacher", "engine_teacher", "engine_student")
RATIO_NAMES = (
    "train_speedup_teacher",
    "train_speedup_student",
    "student_accuracy_retained",
    "student_inference_speedup",
    "train_speedup_vs_trainer",  # engine teacher / Trainer teacher, train samples/s
    "teacher_accuracy_delta",  # engine teacher - study loop's teacher, test accuracy (fp32 scoring, both)
    "trainer_accuracy_delta",  # engine teacher - Trainer teacher
)
RUN_KEYS = (
    "test_accuracy",
    "valid_accuracy",
    "avg_train_accuracy",
    "avg_train_loss",
    "params",
    "train_samples_per_s",
    "infer_samples_per_s",
    "train_rows",
    "test_rows",
)

# Rows per mode at max_length 128: (train, valid, test, inference texts). --quick must finish within 20 minutes
# on 2 CPU cores (4 trainings + evaluations; the study's teacher loop trains ~7.5 samples/s there at 128 tokens,
# its student ~13); at a longer max_length its row counts shrink in proportion (512: 375/125/250).
QUICK_ROWS = (1500, 500, 1000, 256)
FULL_ROWS = (22500, 2500, 25000, 256)

# The engine's hyperparameters. "study" is the baseline's own (the fair throughput comparison); "best" is the
# accuracy recipe jobs can ask for too (mlcore.recipes.BEST), here without its epochs: the bench gives the
# teacher one in quick mode and BEST_FULL_EPOCHS in full mode, and the student one more.
_ENGINE = {"group_by_length": "auto", "precision": "auto"}


def _without_epochs(params: dict[str, Any]) -> dict[str, Any]:
    return {**_ENGINE, **{k: v for k, v in params.items() if k != "epochs"}}


RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "study": {"teacher": _ENGINE, "student": {**_ENGINE, "alpha": 0.5, "temperature": 1.0}},
    "best": {"teacher": _without_epochs(BEST.finetune), "student": _without_epochs(BEST.distill)},
}
BEST_FULL_EPOCHS = 2
BUSY_CORES = 0.2  # CPU other processes used during a run, in cores, above which the run is flagged
PAIRED_ROUNDS = 3  # interleaved CPU inference rounds per model at the end (paired_inference)
STUDENT_EXTRA_EPOCHS = {"study": 0, "best": 1}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.train_bench", description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="a few thousand rows (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="all 25,000 + 25,000 rows")
    p.set_defaults(mode="quick")
    p.add_argument("--max-length", type=int, default=128, help="tokens per text (default 128)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N for training (default auto)")
    p.add_argument("--train-rows", type=int, help="training rows (taken after the valid rows from the train file)")
    p.add_argument("--valid-rows", type=int, help="validation rows held out of the train file's prefix")
    p.add_argument("--test-rows", type=int, help="rows from the start of the test file")
    p.add_argument("--infer-rows", type=int, help="test texts for the CPU inference measurement")
    p.add_argument(
        "--infer-seconds",
        type=float,
        default=20.0,
        help="CPU timing budget per model: half after its training, half in the rounds at the end (default 20)",
    )
    p.add_argument(
        "--engine-recipe",
        choices=sorted(RECIPES),
        default="study",
        help="engine hyperparameters: study (the baseline's, default) or best (accuracy)",
    )
    p.add_argument(
        "--engine-epochs", type=int, help=f"engine epochs (default 1; best recipe in full mode: {BEST_FULL_EPOCHS})"
    )
    p.add_argument(
        "--engine-student-epochs",
        type=int,
        help="engine student epochs (default: the teacher's, plus one for the best recipe)",
    )
    p.add_argument("--engine-lr", type=float, help="engine teacher learning rate (default: the recipe's)")
    p.add_argument("--engine-student-lr", type=float, help="engine student learning rate (default: the recipe's)")
    p.add_argument("--hidden-loss-weight", type=float, help="engine student's hidden-state loss weight (default 0)")
    p.add_argument("--engine-precision", choices=["auto", "fp32", "bf16"], help="the engine's precision (default auto)")
    p.add_argument(
        "--engine-group-by-length", choices=["auto", "true", "false"],
        help="the engine's group_by_length (default: the recipe's, auto)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, help="every run's batch size (default: the study's 64; best: its own)")
    p.add_argument("--learning-rate", type=float, help="every run's learning rate (default: the study's 2e-5)")
    p.add_argument("--skip-trainer", action="store_true", help="no transformers Trainer run")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="teacher base model: catalogue id or folder")
    p.add_argument("--train-file", type=Path, default=DEFAULT_TRAIN_FILE)
    p.add_argument("--test-file", type=Path, default=DEFAULT_TEST_FILE)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the JSON (default bench/runs/)")
    p.add_argument("--keep-models", action="store_true", help="keep the four model folders next to the JSON")
    p.add_argument("--skip-baseline", action="store_true", help="engine runs only (baseline runs and ratios null)")
    p.add_argument("--progress-every", type=float, default=30.0, help="seconds between progress lines")
    args = p.parse_args(argv)
    if not 8 <= args.max_length <= 512:
        p.error("--max-length must be in 8..512")
    for name in (
        "train_rows", "valid_rows", "test_rows", "infer_rows", "engine_epochs", "engine_student_epochs", "batch_size"
    ):  # fmt: skip
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def row_counts(args: argparse.Namespace) -> tuple[dict[str, int], str]:
    """Rows per split, and the mode's name ("custom" once a row count is given explicitly)."""
    if args.mode == "full":
        train, valid, test, infer = FULL_ROWS
    else:
        scale = min(1.0, 128 / args.max_length)  # attention and padding grow with max_length: fewer rows
        train, valid, test = (max(64, round(n * scale)) for n in QUICK_ROWS[:3])
        infer = max(96, round(QUICK_ROWS[3] * scale))
    given = {"train": args.train_rows, "valid": args.valid_rows, "test": args.test_rows, "infer": args.infer_rows}
    rows = {"train": train, "valid": valid, "test": test, "infer": infer}
    rows |= {k: v for k, v in given.items() if v is not None}
    mode = "custom" if any(v is not None for k, v in given.items() if k != "infer") else args.mode
    return rows, mode


def load_splits(args: argparse.Namespace, rows: dict[str, int]) -> dict[str, TextDataset]:
    """pool (train + valid, the train file's prefix), train, valid (one fixed split of the pool), test."""
    train_file, _ = read_table(args.train_file)
    test_file, _ = read_table(args.test_file)
    if train_file.label_names != test_file.label_names:
        raise SystemExit(f"train labels {train_file.label_names} differ from test labels {test_file.label_names}")
    n_pool = min(rows["train"] + rows["valid"], len(train_file))
    pool = train_file.subset(range(n_pool))
    valid_fraction = rows["valid"] / n_pool
    # The same stratified, seeded split the engine makes of `pool` with this valid_fraction and no test part.
    train, valid, _ = split_dataset(pool, valid_fraction=valid_fraction, test_fraction=0.0, seed=args.seed)
    test = test_file.subset(range(min(rows["test"], len(test_file))))
    return {"pool": pool, "train": train, "valid": valid, "test": test, "valid_fraction": valid_fraction}


class Progress:
    """Prints one line per `every` seconds (and at the first and last step) with the training speed."""

    def __init__(self, name: str, batch_size: int, every: float) -> None:
        self.name, self.batch_size, self.every = name, batch_size, every
        self.start = time.perf_counter()
        self.last_print = -math.inf

    def __call__(self, step: int, total: int, loss: float | None = None, accuracy: float | None = None) -> None:
        now = time.perf_counter()
        if step not in (1, total) and now - self.last_print < self.every:
            return
        self.last_print = now
        elapsed = max(now - self.start, 1e-9)
        rate = step / elapsed
        eta = (total - step) / rate if rate > 0 else float("nan")
        extra = ""
        if loss is not None:
            extra += f" loss {loss:.4f}"
        if accuracy is not None:
            extra += f" acc {accuracy:.3f}"
        say(
            f"[{self.name}] step {step}/{total} {rate:.3f} steps/s ~{rate * self.batch_size:.1f} samples/s"
            f"{extra} elapsed {elapsed:.0f}s eta {eta:.0f}s"
        )


class EngineClock(Callback):
    """Times the engine's training loop from on_train_begin to the last batch, minus validation in between."""

    def __init__(self, name: str, batch_size: int, every: float, device: torch.device) -> None:
        self.name, self.batch_size, self.every, self.device = name, batch_size, every, device
        self.info: dict[str, Any] = {}
        self.begin = self.last_batch = 0.0
        self.total_steps = 0
        self.eval_seconds = 0.0
        self.progress: Progress | None = None

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self.info = dict(info)
        self.begin = self.last_batch = time.perf_counter()
        self.progress = Progress(self.name, self.batch_size, self.every)

    def on_batch_end(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
        if step == total_steps and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.last_batch = time.perf_counter()
        self.total_steps = total_steps
        if self.progress is not None:
            self.progress(step, total_steps, _num(metrics.get("train/loss")), _num(metrics.get("train/accuracy")))

    def on_evaluate(self, split: str, step: int, metrics: dict[str, float]) -> None:
        if split == "val" and step < self.total_steps:  # validation between epochs is not training time
            self.eval_seconds += time.perf_counter() - self.last_batch

    @property
    def train_seconds(self) -> float:
        return self.last_batch - self.begin - self.eval_seconds


def engine_epochs(args: argparse.Namespace, mode: str) -> tuple[int, int]:
    """Epochs for the engine's teacher and student: the options if given, else the recipe's."""
    teacher = args.engine_epochs or (BEST_FULL_EPOCHS if args.engine_recipe == "best" and mode == "full" else 1)
    student = args.engine_student_epochs or teacher + STUDENT_EXTRA_EPOCHS[args.engine_recipe]
    return teacher, student


def engine_config(cls: type[TrainConfig], recipe: dict[str, Any], recipe_name: str, **base: Any) -> TrainConfig:
    """The config with the recipe's settings; a recipe setting the installed mlcore lacks is an error for
    "best" and skipped for "study" (whose extra settings are the engine's defaults anyway)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    settings = dict(base)
    for key, value in recipe.items():
        if key in fields:
            settings[key] = value
        elif recipe_name != "study":
            raise SystemExit(f"this mlcore's {cls.__name__} has no {key!r} setting, which recipe {recipe_name!r} needs")
    missing = [k for k in settings if k not in fields]
    if missing:
        raise SystemExit(f"this mlcore's {cls.__name__} has no {', '.join(missing)} setting")
    return cls(**settings)


def run_engine(
    kind: str,
    splits: dict[str, Any],
    source: str,
    output_dir: Path,
    config: TrainConfig,
    device: torch.device,
    every: float,
) -> dict[str, Any]:
    from mlcore.distill import distill
    from mlcore.train import finetune

    name = f"engine_{kind}"
    say(f"[{name}] {len(splits['train'])} train rows, {len(splits['valid'])} valid, {len(splits['test'])} test")
    clock = EngineClock(name, config.batch_size, every, device)
    train_fn = finetune if kind == "teacher" else distill
    started = time.perf_counter()
    result = train_fn(splits["pool"], source, output_dir, config, clock, test_dataset=splits["test"], resume=False)
    _check_split(name, clock.info, splits)
    m = result.metrics
    return {
        "test_accuracy": fp32_test_accuracy(output_dir, splits["test"], config.max_length, device),
        "test_accuracy_reported": m.get("test/accuracy"),  # the engine's own, in its training precision
        "train_precision": "bf16" if autocast_dtype(device, config.precision) is torch.bfloat16 else "fp32",
        "valid_accuracy": m.get("val/accuracy"),
        "avg_train_accuracy": m["train/avg_accuracy"],
        "avg_train_loss": m["train/avg_loss"],
        "params": result.num_parameters,
        "train_rows": result.train_rows,
        "epochs": config.epochs,
        "steps": result.steps,
        "graphed_steps": result.graphed_steps,  # replayed from CUDA graphs (mlcore.graphs); 0 on CPU
        "grouped_by_length": clock.info.get("group_by_length"),  # what group_by_length "auto" decided
        "train_seconds": clock.train_seconds,
        # Model loading and the one-off tokenisation of every split, before the first batch.
        "setup_seconds": clock.begin - started,
        "total_seconds": time.perf_counter() - started,
        "config": dataclasses.asdict(config),
        "model_dir": str(output_dir),
    }


def _check_split(name: str, info: dict[str, Any], splits: dict[str, Any]) -> None:
    expected = {
        "train_rows": len(splits["train"]),
        "valid_rows": len(splits["valid"]),
        "test_rows": len(splits["test"]),
    }
    got = {k: info.get(k) for k in expected}
    if got != expected:
        raise SystemExit(f"[{name}] the engine split the rows differently from the baseline: {got} != {expected}")


def fp32_test_accuracy(model_dir: Path, test: TextDataset, max_length: int, device: torch.device) -> float | None:
    """The saved model's test accuracy from the same fp32 code that scores the study's loop and the Trainer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).to(device)
    config = StudyConfig(max_length=max_length, device=str(device))
    return accuracy(model, AutoTokenizer.from_pretrained(model_dir), test, config)


def profiled(train: Callable[[], dict[str, Any]], peaks: dict[str, float]) -> dict[str, Any]:
    """train()'s figures, with its training steps' efficiency (bench/efficiency.py) against the peak of the
    precision it trained in (train_precision, fp32 unless the run says otherwise)."""
    profile = StepProfile()
    started, busy, own = time.perf_counter(), machine_busy_seconds(), cpu_seconds([os.getpid()])
    with profile.recording():
        figures = train()
    figures.setdefault("train_precision", "fp32")
    figures["efficiency"] = profile.summary(peaks.get(figures["train_precision"]))
    # Cores other processes kept busy meanwhile (BUSY_CORES and more: the run's figures are disturbed).
    other = (machine_busy_seconds() - busy) - (cpu_seconds([os.getpid()]) - own)
    figures["other_busy_cores"] = max(other, 0.0) / (time.perf_counter() - started)
    if figures["other_busy_cores"] > BUSY_CORES:
        say(f"bench: other processes kept {figures['other_busy_cores']:.2f} cores busy during this run")
    return figures


def run_trainer(
    splits: dict[str, Any], source: str, output_dir: Path, config: StudyConfig, every: float
) -> dict[str, Any]:
    name = "trainer_teacher"
    say(f"[{name}] {len(splits['train'])} train rows, {len(splits['valid'])} valid, {len(splits['test'])} test")
    started = time.perf_counter()
    figures = finetune_trainer(
        splits["train"], splits["valid"], splits["test"], source, output_dir, config,
        Progress(name, config.batch_size, every),
    )  # fmt: skip
    return figures | {
        "total_seconds": time.perf_counter() - started,
        "config": dataclasses.asdict(config),
        "model_dir": str(output_dir),
    }


def run_baseline(
    kind: str, splits: dict[str, Any], source: str, output_dir: Path, config: StudyConfig, every: float
) -> dict[str, Any]:
    name = f"baseline_{kind}"
    say(f"[{name}] {len(splits['train'])} train rows, {len(splits['valid'])} valid, {len(splits['test'])} test")
    fn = finetune_baseline if kind == "teacher" else distill_baseline
    started = time.perf_counter()
    figures = fn(
        splits["train"],
        splits["valid"],
        splits["test"],
        source,
        output_dir,
        config,
        Progress(name, config.batch_size, every),
    )
    figures |= {
        "total_seconds": time.perf_counter() - started,
        "config": dataclasses.asdict(config),
        "model_dir": str(output_dir),
    }
    return figures


def cpu_speed(model_dir: Path, texts: list[str], seconds: float) -> dict[str, float]:
    """CPU inference at batch 1 and 32 with os.cpu_count() threads, the same way for every model."""
    from mlcore.evaluate import measure_cpu_speed

    with all_cpu_threads():
        return measure_cpu_speed(model_dir, texts, batch_sizes=(1, 32), max_seconds=seconds)


@contextlib.contextmanager
def all_cpu_threads():
    """torch on os.cpu_count() threads inside the block, as every CPU inference here is measured."""
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def paired_inference(runs: dict[str, dict[str, Any] | None], texts: list[str], seconds: float) -> None:
    """Re-measure every finished model's CPU samples/s at batch 32 in interleaved rounds (A B C D, A B C D, ...)
    and make each one's infer_samples_per_s the median of its rounds (the single measurement after training is
    kept as infer_samples_per_s_first). On a noisy machine a slow minute then hits every model alike instead of
    whichever was measured in it: on the GPU machine's 16-core host two copies of one architecture, measured
    minutes apart, differed by 25%."""
    from mlcore.evaluate import measure_cpu_speed

    done = {name: run for name, run in runs.items() if run is not None}
    rounds: dict[str, list[float]] = {name: [] for name in done}
    with all_cpu_threads():
        for k in range(PAIRED_ROUNDS):
            say(f"bench: CPU inference round {k + 1}/{PAIRED_ROUNDS}, {', '.join(done)}")
            for name, run in done.items():
                speed = measure_cpu_speed(
                    run["model_dir"], texts, batch_sizes=(32,), max_seconds=seconds / PAIRED_ROUNDS
                )
                rounds[name].append(speed["cpu/samples_per_s_b32"])
    for name, run in done.items():
        run["infer_samples_per_s_first"] = run["infer_samples_per_s"]
        run["infer_samples_per_s_rounds"] = rounds[name]
        run["infer_samples_per_s"] = statistics.median(rounds[name])


def fp32_source(source: str, workdir: Path) -> str:
    """source itself when its weights are fp32, else an fp32 copy in workdir.

    transformers 5 loads a checkpoint in its stored dtype, so a bf16 copy of the model (as carried to a GPU
    machine) would train the baseline in bf16 and give the engine different starting weights; both start from
    the same fp32 weights instead.
    """
    folder = Path(source)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return source
    from safetensors import safe_open

    with safe_open(str(files[0]), framework="pt") as f:
        keys = [k for k in f.keys() if f.get_slice(k).get_dtype() in ("BF16", "F16", "F32", "F64")]
        stored = {f.get_slice(k).get_dtype() for k in keys}
    if stored <= {"F32"}:
        return source
    from transformers import AutoModel, AutoTokenizer

    copy = workdir / "base_fp32"
    say(f"bench: {source} holds {'/'.join(sorted(stored))} weights; training from an fp32 copy in {copy}")
    AutoModel.from_pretrained(source, dtype=torch.float32).save_pretrained(copy)
    AutoTokenizer.from_pretrained(source).save_pretrained(copy)
    return str(copy)


def machine_info(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cuda = device.type == "cuda"
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "train_device": str(device),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
    }


def ratios(runs: dict[str, dict[str, Any] | None]) -> dict[str, float | None]:
    def get(run: str, key: str) -> float | None:
        return (runs.get(run) or {}).get(key)

    return {
        "train_speedup_teacher": _div(
            get("engine_teacher", "train_samples_per_s"), get("baseline_teacher", "train_samples_per_s")
        ),
        "train_speedup_student": _div(
            get("engine_student", "train_samples_per_s"), get("baseline_student", "train_samples_per_s")
        ),
        "student_accuracy_retained": _div(
            get("engine_student", "test_accuracy"), get("engine_teacher", "test_accuracy")
        ),
        "student_inference_speedup": _div(
            get("engine_student", "infer_samples_per_s"), get("engine_teacher", "infer_samples_per_s")
        ),
        "train_speedup_vs_trainer": _div(
            get("engine_teacher", "train_samples_per_s"), get("trainer_teacher", "train_samples_per_s")
        ),
        "teacher_accuracy_delta": _sub(
            get("engine_teacher", "test_accuracy"), get("baseline_teacher", "test_accuracy")
        ),
        "trainer_accuracy_delta": _sub(
            get("engine_teacher", "test_accuracy"), get("trainer_teacher", "test_accuracy")
        ),
    }


def table(runs: dict[str, dict[str, Any] | None]) -> str:
    def f(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [
        "| run | avg train acc | valid acc | test acc | avg train loss | params | train samples/s | "
        "CPU infer samples/s (b32) | CPU latency b1 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in RUN_NAMES:
        r = runs.get(name)
        if r is None:
            lines.append(f"| {name} | skipped |  |  |  |  |  |  |  |")
            continue
        lines.append(
            f"| {name} | {f(r['avg_train_accuracy'], '.4f')} | {f(r['valid_accuracy'], '.4f')} | "
            f"{f(r['test_accuracy'], '.4f')} | {f(r['avg_train_loss'], '.4f')} | {r['params'] / 1e6:.2f}M | "
            f"{f(r['train_samples_per_s'], '.2f')} | {f(r['infer_samples_per_s'], '.1f')} | "
            f"{f(r.get('cpu_latency_ms_b1'), '.1f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    rows, mode = row_counts(args)
    try:
        device = resolve_device(args.device)
    except RuntimeError as e:
        raise SystemExit(f"--device {args.device}: {e}") from None
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)  # as mlcore does, so both loops get the same threads
    source = resolve_model(args.model)
    machine = machine_info(device)
    say(
        f"bench: mode {mode}, max_length {args.max_length}, device {device}, engine recipe {args.engine_recipe}, "
        f"rows {rows}, model {source}"
    )
    say(f"bench: {machine}")
    bench_start = time.perf_counter()
    peaks = matmul_peak(device, os.cpu_count() or 1)
    machine["peak_gflops_per_s"] = peaks  # a dense matmul's, per precision, on the training device
    say(f"bench: matmul peak GFLOP/s {peaks}")

    splits = load_splits(args, rows)
    infer_texts = splits["test"].texts[: rows["infer"]]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"train-{stamp}-{mode}-L{args.max_length}.json"
    keep = args.out / f"train-{stamp}-{mode}-L{args.max_length}-models" if args.keep_models else None
    runs: dict[str, dict[str, Any] | None] = dict.fromkeys(RUN_NAMES)

    def finished(name: str, run: dict[str, Any]) -> None:
        """Measure the run's CPU inference, and write the JSON so far: a run cut short keeps what it has."""
        say(f"[{name}] measuring CPU inference on {len(infer_texts)} test texts")
        speed = cpu_speed(Path(run["model_dir"]), infer_texts, args.infer_seconds / 2)
        run |= {
            "recipe": args.engine_recipe if name.startswith("engine") else "study",
            "train_samples_per_s": run["train_rows"] * run["epochs"] / run["train_seconds"],
            "infer_samples_per_s": speed["cpu/samples_per_s_b32"],
            "cpu_latency_ms_b1": speed.get("cpu/latency_ms_b1"),
            "cpu_samples_per_s_b1": speed.get("cpu/samples_per_s_b1"),
            "infer_rows": len(infer_texts),
            "cpu_threads": speed.get("cpu/threads"),
            "test_rows": len(splits["test"]),
            "valid_rows": len(splits["valid"]),
            "device": str(device),
            "max_length": args.max_length,
            "seed": args.seed,
            "base_model": args.model,
        }
        runs[name] = run
        write_result(path, mode, args.max_length, machine, bench_start, runs, complete=False)

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        models = keep or Path(tmp)
        source = fp32_source(source, Path(tmp))
        common = {"max_length": args.max_length, "seed": args.seed, "device": str(device)}
        alike = {k: v for k, v in (("batch_size", args.batch_size), ("learning_rate", args.learning_rate)) if v}
        study = StudyConfig(**common, **alike)
        every = args.progress_every

        if not args.skip_baseline:
            teacher_dir, student_dir = models / "baseline_teacher", models / "baseline_student"
            finished(
                "baseline_teacher",
                profiled(lambda: run_baseline("teacher", splits, source, teacher_dir, study, every), peaks),
            )
            finished(
                "baseline_student",
                profiled(lambda: run_baseline("student", splits, teacher_dir, student_dir, study, every), peaks),
            )
        if not args.skip_trainer:
            trainer_dir = models / "trainer_teacher"
            finished("trainer_teacher", profiled(lambda: run_trainer(splits, source, trainer_dir, study, every), peaks))

        recipe = RECIPES[args.engine_recipe]
        epochs, student_epochs = engine_epochs(args, mode)
        base = common | {"valid_fraction": splits["valid_fraction"], "test_fraction": 0.0}
        teacher_recipe, student_recipe = dict(recipe["teacher"]) | alike, dict(recipe["student"]) | alike
        if args.engine_lr is not None:
            teacher_recipe["learning_rate"] = args.engine_lr
        if args.engine_student_lr is not None:
            student_recipe["learning_rate"] = args.engine_student_lr
        if args.hidden_loss_weight is not None:
            student_recipe["hidden_loss_weight"] = args.hidden_loss_weight
        if args.engine_precision is not None:
            teacher_recipe["precision"] = student_recipe["precision"] = args.engine_precision
        if args.engine_group_by_length is not None:
            grouping = {"true": True, "false": False}.get(args.engine_group_by_length, "auto")
            teacher_recipe["group_by_length"] = student_recipe["group_by_length"] = grouping
        teacher_config = engine_config(TrainConfig, teacher_recipe, args.engine_recipe, epochs=epochs, **base)
        student_config = engine_config(
            DistillConfig, student_recipe, args.engine_recipe, epochs=student_epochs, **base
        )
        engine_teacher, engine_student = models / "engine_teacher", models / "engine_student"
        finished(
            "engine_teacher",
            profiled(
                lambda: run_engine("teacher", splits, source, engine_teacher, teacher_config, device, every), peaks
            ),
        )
        finished(
            "engine_student",
            profiled(
                lambda: run_engine(
                    "student", splits, str(engine_teacher), engine_student, student_config, device, every
                ),
                peaks,
            ),
        )

        paired_inference(runs, infer_texts, args.infer_seconds / 2)
        for run in runs.values():
            if run is not None and keep is None:
                run.pop("model_dir")
    result = write_result(path, mode, args.max_length, machine, bench_start, runs, complete=True)
    say("")
    say(table(runs))
    say("")
    say("ratios: " + ", ".join(f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in result["ratios"].items()))
    say(str(path))
    return path


def write_result(
    path: Path,
    mode: str,
    max_length: int,
    machine: dict[str, Any],
    bench_start: float,
    runs: dict[str, dict[str, Any] | None],
    complete: bool,
) -> dict[str, Any]:
    """Write the JSON (after every run, `complete` false until the last) and return it."""
    result = {
        "mode": mode,
        "max_length": max_length,
        "complete": complete,
        "machine": machine | {"bench_seconds": time.perf_counter() - bench_start},
        "runs": runs,
        "ratios": ratios(runs),
    }
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def say(line: str) -> None:
    print(line, flush=True)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _sub(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


if __name__ == "__main__":
    main(sys.argv[1:])
