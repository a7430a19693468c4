"""The training benchmark end to end on a tiny BERT and a tiny CSV: the JSON's schema, its figures, the last line."""

from __future__ import annotations

import csv
import gzip
import json
import statistics
from pathlib import Path

import pytest

from bench import efficiency, train_bench
from mlcore.testing import make_tiny_bert, sentiment_rows


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture
def bench_files(tmp_path: Path) -> dict[str, Path]:
    return {
        "model": make_tiny_bert(tmp_path / "tiny"),
        "train": _write_csv(tmp_path / "train.csv.gz", sentiment_rows(120, seed=1)),
        "test": _write_csv(tmp_path / "test.csv.gz", sentiment_rows(60, seed=2)),
        "out": tmp_path / "runs",
    }


def test_bench_writes_the_schema_and_prints_its_path_last(bench_files: dict[str, Path], capsys) -> None:
    path = train_bench.main([
        "--quick", "--device", "cpu", "--max-length", "32", "--model", str(bench_files["model"]),
        "--train-file", str(bench_files["train"]), "--test-file", str(bench_files["test"]),
        "--train-rows", "64", "--valid-rows", "16", "--test-rows", "32", "--infer-rows", "32", "--infer-seconds", "1",
        "--out", str(bench_files["out"]), "--progress-every", "0",
    ])  # fmt: skip
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(path)
    assert path.parent == bench_files["out"] and path.suffix == ".json"
    assert any(line.startswith("[baseline_teacher] step 1/") for line in printed)
    assert any(line.startswith("[engine_student] step ") for line in printed)
    assert any(line.startswith("| engine_student |") for line in printed)

    result = json.loads(path.read_text())
    assert set(result) == {"mode", "max_length", "complete", "machine", "runs", "ratios"}
    assert result["complete"] is True
    assert result["mode"] == "custom" and result["max_length"] == 32
    assert {"cpu", "cores", "torch", "platform"} <= set(result["machine"])
    runs = result["runs"]
    assert set(runs) == set(train_bench.RUN_NAMES)
    for name, run in runs.items():
        assert set(train_bench.RUN_KEYS) <= set(run), name
        for key in ("test_accuracy", "valid_accuracy", "avg_train_accuracy"):
            if name != "trainer_teacher" or key != "avg_train_accuracy":  # the Trainer does not compute it
                assert 0.0 <= run[key] <= 1.0, (name, key)
        assert run["avg_train_loss"] > 0
        assert run["train_samples_per_s"] > 0 and run["infer_samples_per_s"] > 0
        assert run["cpu_latency_ms_b1"] > 0 and run["train_seconds"] > 0
        assert run["train_rows"] == 64 and run["test_rows"] == 32 and run["valid_rows"] == 16
        assert run["epochs"] == 1 and run["max_length"] == 32 and run["device"] == "cpu"
        assert run["train_samples_per_s"] == pytest.approx(64 / run["train_seconds"])
        # CPU throughput: the median of interleaved rounds at the end, beside the one taken after training
        rounds = run["infer_samples_per_s_rounds"]
        assert len(rounds) == train_bench.PAIRED_ROUNDS and all(r > 0 for r in rounds)
        assert run["infer_samples_per_s"] == statistics.median(rounds) and run["infer_samples_per_s_first"] > 0
        assert "model_dir" not in run
    for kind in ("baseline", "engine"):
        assert 0 < runs[f"{kind}_student"]["params"] < runs[f"{kind}_teacher"]["params"]
    assert runs["baseline_teacher"]["params"] == runs["engine_teacher"]["params"] == runs["trainer_teacher"]["params"]
    assert runs["trainer_teacher"]["trainer_settings"]["train_sampling_strategy"] == "group_by_length"
    assert runs["engine_teacher"]["recipe"] == "study" and runs["baseline_teacher"]["recipe"] == "study"

    _check_efficiency(result, bench_files["model"])

    ratios = result["ratios"]
    assert set(ratios) == set(train_bench.RATIO_NAMES)
    assert ratios["train_speedup_vs_trainer"] == pytest.approx(
        runs["engine_teacher"]["train_samples_per_s"] / runs["trainer_teacher"]["train_samples_per_s"]
    )
    assert ratios["trainer_accuracy_delta"] == pytest.approx(
        runs["engine_teacher"]["test_accuracy"] - runs["trainer_teacher"]["test_accuracy"]
    )
    assert ratios["train_speedup_teacher"] == pytest.approx(
        runs["engine_teacher"]["train_samples_per_s"] / runs["baseline_teacher"]["train_samples_per_s"]
    )
    assert ratios["train_speedup_student"] == pytest.approx(
        runs["engine_student"]["train_samples_per_s"] / runs["baseline_student"]["train_samples_per_s"]
    )
    if runs["engine_teacher"]["test_accuracy"] > 0:
        assert ratios["student_accuracy_retained"] == pytest.approx(
            runs["engine_student"]["test_accuracy"] / runs["engine_teacher"]["test_accuracy"]
        )
    assert ratios["student_inference_speedup"] == pytest.approx(
        runs["engine_student"]["infer_samples_per_s"] / runs["engine_teacher"]["infer_samples_per_s"]
    )


def _check_efficiency(result: dict, base_model: Path) -> None:
    """Every run's steps were all profiled, their time split adds up, and the FLOPs are those of the shapes
    recorded: the baselines pad to max_length, the engine and the Trainer to each batch's longest row."""
    from transformers import AutoConfig

    peaks = result["machine"]["peak_gflops_per_s"]
    assert set(peaks) == {"fp32", "bf16"} and all(v > 0 for v in peaks.values())
    runs = result["runs"]
    for name, run in runs.items():
        e = run["efficiency"]
        assert run["other_busy_cores"] >= 0.0
        assert e["steps_profiled"] == run["steps"] == sum(e["train_shapes"].values()), name
        assert e["model_share"] + e["optimizer_share"] + e["other_share"] == pytest.approx(1.0), name
        assert e["outside_model_share"] == pytest.approx(1 - e["model_share"])
        assert e["train_gflops_per_s"] == pytest.approx(e["train_flops"] / e["window_seconds"] / 1e9)
        assert e["peak_gflops_per_s"] == peaks[run["train_precision"]]
        assert e["share_of_peak"] == pytest.approx(e["train_gflops_per_s"] / e["peak_gflops_per_s"])
        shapes = [tuple(map(int, key.split("x"))) for key in e["train_shapes"]]
        if name.startswith("baseline"):
            assert {length for _, length in shapes} == {32}
        else:
            assert max(length for _, length in shapes) <= 32
    config = AutoConfig.from_pretrained(base_model)
    for name in ("baseline_teacher", "trainer_teacher", "engine_teacher"):
        e = runs[name]["efficiency"]
        expected = sum(
            count * 3 * efficiency.forward_flops(config, *map(int, key.split("x")))
            for key, count in e["train_shapes"].items()
        )
        assert e["train_flops"] == expected, name


def test_the_flop_count_is_torchs_for_a_training_pass(tmp_path: Path) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(make_tiny_bert(tmp_path / "tiny"), num_labels=2)
    model.train()
    for rows, length in ((4, 32), (3, 77)):
        ids = torch.randint(5, 50, (rows, length))
        with FlopCounterMode(display=False) as counter:
            model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
        assert counter.get_total_flops() == 3 * efficiency.forward_flops(model.config, rows, length)


def test_a_run_cut_short_leaves_the_finished_runs_in_the_json(
    bench_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A benchmark killed at a time limit (as on a lent GPU) keeps the figures of the runs it finished."""

    def engine_dies(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_bench, "run_engine", engine_dies)
    with pytest.raises(KeyboardInterrupt):
        train_bench.main([
            "--device", "cpu", "--max-length", "32", "--model", str(bench_files["model"]),
            "--train-file", str(bench_files["train"]), "--test-file", str(bench_files["test"]),
            "--train-rows", "64", "--valid-rows", "16", "--test-rows", "32", "--infer-rows", "16",
            "--infer-seconds", "0.5", "--out", str(bench_files["out"]), "--progress-every", "0",
        ])  # fmt: skip
    (path,) = bench_files["out"].glob("train-*.json")
    result = json.loads(path.read_text())
    assert result["complete"] is False
    runs = result["runs"]
    assert runs["engine_teacher"] is None and runs["engine_student"] is None
    for name in ("baseline_teacher", "baseline_student"):
        assert runs[name]["train_rows"] == 64 and runs[name]["infer_samples_per_s"] > 0
    assert result["ratios"]["train_speedup_teacher"] is None


def test_quick_rows_shrink_with_max_length() -> None:
    rows_128, mode = train_bench.row_counts(train_bench.parse_args(["--quick"]))
    rows_512, _ = train_bench.row_counts(train_bench.parse_args(["--quick", "--max-length", "512"]))
    full, full_mode = train_bench.row_counts(train_bench.parse_args(["--full"]))
    assert mode == "quick" and full_mode == "full"
    assert rows_128["train"] == 1500 and rows_512["train"] == 375
    assert full["train"] + full["valid"] == 25000 and full["test"] == 25000


@pytest.mark.parametrize(
    ("argv", "mode", "expected"),
    [
        ([], "quick", (1, 1)),
        (["--engine-recipe", "best"], "quick", (1, 2)),
        (["--engine-recipe", "best"], "full", (2, 3)),
        (["--engine-recipe", "best", "--engine-epochs", "3"], "quick", (3, 4)),
        (["--engine-recipe", "best", "--engine-student-epochs", "1"], "full", (2, 1)),
    ],
)
def test_engine_epochs_follow_the_recipe_unless_given(argv: list[str], mode: str, expected: tuple[int, int]) -> None:
    assert train_bench.engine_epochs(train_bench.parse_args(argv), mode) == expected


def test_a_bf16_base_model_is_trained_from_an_fp32_copy(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModel

    tiny = make_tiny_bert(tmp_path / "tiny")
    assert train_bench.fp32_source(str(tiny), tmp_path / "work") == str(tiny)  # already fp32: used as it is
    AutoModel.from_pretrained(tiny, dtype=torch.bfloat16).save_pretrained(tmp_path / "bf16")
    (tmp_path / "bf16" / "vocab.txt").write_text((tiny / "vocab.txt").read_text())
    copy = train_bench.fp32_source(str(tmp_path / "bf16"), tmp_path / "work")
    assert copy != str(tmp_path / "bf16")
    model = AutoModel.from_pretrained(copy)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_the_order_noise_bench_trains_each_arm_per_seed_and_summarises(bench_files: dict[str, Path], capsys) -> None:
    from bench import order_noise

    path = order_noise.main([
        "--seeds", "1", "2", "--model", str(bench_files["model"]), "--train-file", str(bench_files["train"]),
        "--test-file", str(bench_files["test"]), "--train-rows", "48", "--valid-rows", "16", "--test-rows", "24",
        "--out", str(bench_files["out"]),
    ])  # fmt: skip
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(path)
    result = json.loads(path.read_text())
    assert [(r["seed"], r["arm"]) for r in result["runs"]] == [
        (s, a) for s in (1, 2) for a in ("grouped", "plain", "baseline")
    ]
    for arm, s in result["summary"].items():
        values = [r["test_accuracy"] for r in result["runs"] if r["arm"] == arm]
        assert s["seeds"] == 2 and s["mean_test_accuracy"] == pytest.approx(statistics.fmean(values))
    assert result["rows"] == {"train": 48, "valid": 16, "test": 24}


def test_the_engines_grouping_can_be_forced_and_its_decision_is_recorded(bench_files: dict[str, Path]) -> None:
    common = [
        "--quick", "--device", "cpu", "--max-length", "32", "--model", str(bench_files["model"]), "--skip-baseline",
        "--train-file", str(bench_files["train"]), "--test-file", str(bench_files["test"]), "--train-rows", "64",
        "--valid-rows", "16", "--test-rows", "32", "--infer-rows", "16", "--infer-seconds", "0.2",
        "--progress-every", "0",
    ]  # fmt: skip
    for flag, setting, decided in (("false", False, False), ("true", True, True)):
        out = bench_files["out"] / flag
        path = train_bench.main([*common, "--out", str(out), "--engine-group-by-length", flag])
        runs = json.loads(path.read_text())["runs"]
        for name in ("engine_teacher", "engine_student"):
            assert runs[name]["config"]["group_by_length"] is setting
            assert runs[name]["grouped_by_length"] is decided
