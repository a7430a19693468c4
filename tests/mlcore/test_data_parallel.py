"""A run with devices=2 trains on two gloo processes (mlcore.parallel): the same global batches split across them,
so its losses are the one-process run's; rank 0 alone reports, checkpoints and saves, and no process outlives it,
however it ends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from mlcore.callbacks import Cancelled
from mlcore.config import DistillConfig, TrainConfig
from mlcore.data import TextDataset
from mlcore.distill import distill
from mlcore.parallel import Group
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING

REPO = Path(__file__).resolve().parents[2]
# 127 training rows in batches of 9: 14 full batches split 5/4 between the ranks, then one of a single row, which
# leaves rank 1 without rows (it then runs the row at weight 0). Two epochs: the schedule crosses an epoch. In
# fp32: the runs are compared step by step, and bf16 autocast (precision "auto" on a CPU with native bf16) rounds
# a batch split in two differently from the whole one.
UNEVEN = {**TINY_TRAINING, "batch_size": 9, "max_train_samples": 127, "epochs": 2, "precision": "fp32"}


@pytest.fixture(scope="module")
def bert_without_dropout(tiny_bert, tmp_path_factory) -> Path:
    """The tiny BERT with dropout off: what is left between one process and two is the order of a gradient's sums."""
    folder = tmp_path_factory.mktemp("nodropout") / "bert"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _ranks(parent: int | None = None) -> list[psutil.Process]:
    """The other ranks running under this process (or `parent`): children that run mlcore.parallel (the test
    process may have others, such as the web's helper processes)."""
    found = []
    for process in psutil.Process(parent).children(recursive=True):
        try:
            if "mlcore.parallel" in process.cmdline():
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def _losses(callback: RecordingCallback) -> list[float]:
    return [metrics["train/loss"] for _, _, metrics in callback.batches]


def test_two_processes_train_the_one_process_runs_losses_and_leave_no_process(
    bert_without_dropout, sentiment, tmp_path
):
    one, two = RecordingCallback(), RecordingCallback()
    single = finetune(sentiment, str(bert_without_dropout), tmp_path / "one", TrainConfig(**UNEVEN), one)
    double = finetune(
        sentiment, str(bert_without_dropout), tmp_path / "two", TrainConfig(**UNEVEN, devices=2, checkpoint_every=5),
        two,
    )  # fmt: skip

    assert _ranks() == []
    # The same global batches, so the same steps, schedule and reported rows per step.
    assert double.steps == single.steps == 2 * 15
    assert [(s, t, m["lr"], m["epoch"]) for s, t, m in two.batches] == [
        (s, t, m["lr"], m["epoch"]) for s, t, m in one.batches
    ]
    # Without dropout only float summation order differs (the ranks' gradients are averaged in another order than
    # one batch's rows): over these 30 AdamW steps at lr 3e-3 no loss moved by more than 1.2e-7 (one float32 step at
    # 0.7). A wrong split is far outside 1e-5: averaging the ranks' gradients unweighted moved losses by 5e-3.
    assert _losses(two) == pytest.approx(_losses(one), abs=1e-5)
    # Each rank's accuracy weighed by its share of the batch: the batch's, up to float rounding.
    accuracies = [m["train/accuracy"] for _, _, m in one.batches]
    assert [m["train/accuracy"] for _, _, m in two.batches] == pytest.approx(accuracies, abs=1e-6)
    assert double.metrics["test/loss"] == pytest.approx(single.metrics["test/loss"], abs=1e-5)
    # Rank 0 alone reported (each step once), validated once per epoch, checkpointed and saved.
    assert [s for s, _, _ in two.batches] == list(range(1, 31))
    assert [(split, step) for split, step, _ in two.evaluations] == [("val", 15), ("val", 30), ("test", 30)]
    assert [step for step, _ in two.checkpoints] == [5, 10, 15, 20, 25, 30]
    assert (tmp_path / "two" / "distillery.json").is_file()
    assert json.loads((tmp_path / "two" / "distillery.json").read_text())["config"]["devices"] == 2


def test_with_dropout_two_processes_learn_as_well_as_one(tiny_bert, sentiment, tmp_path):
    one, two = RecordingCallback(), RecordingCallback()
    single = finetune(sentiment, str(tiny_bert), tmp_path / "one", TrainConfig(**TINY_TRAINING), one)
    double = finetune(sentiment, str(tiny_bert), tmp_path / "two", TrainConfig(**TINY_TRAINING, devices=2), two)
    # Dropout draws differ per rank, so only the expectation is the same: the tiny BERT learns the task either way.
    # The first step's loss is before any update, so it differs by dropout alone.
    assert _losses(two)[0] == pytest.approx(_losses(one)[0], abs=0.05)
    assert double.metrics["test/accuracy"] >= 0.9 and single.metrics["test/accuracy"] >= 0.9
    assert abs(double.metrics["train/avg_loss"] - single.metrics["train/avg_loss"]) < 0.1
    assert _ranks() == []


def test_a_cancel_on_rank_0_stops_every_rank_and_keeps_the_checkpoint(bert_without_dropout, sentiment, tmp_path):
    callback = RecordingCallback(stop_after=6)
    config = TrainConfig(**UNEVEN, devices=2, checkpoint_every=5)
    with pytest.raises(Cancelled):
        finetune(sentiment, str(bert_without_dropout), tmp_path / "out", config, callback)
    assert _ranks() == []
    assert len(callback.batches) == 6 and [step for step, _ in callback.checkpoints] == [5]
    assert not (tmp_path / "out" / "distillery.json").exists()

    # A resume continues from rank 0's checkpoint on both ranks, to the one-process run's losses.
    resumed, one = RecordingCallback(), RecordingCallback()
    finetune(sentiment, str(bert_without_dropout), tmp_path / "out", config, resumed)
    finetune(sentiment, str(bert_without_dropout), tmp_path / "single", TrainConfig(**UNEVEN), one)
    assert [s for s, _, _ in resumed.batches] == list(range(6, 31))
    assert _losses(resumed) == pytest.approx(_losses(one)[5:], abs=1e-5)


class KillRank1(RecordingCallback):
    """Kills the other rank's process after step 2, as the kernel's OOM killer would."""

    def on_batch_end(self, step, total_steps, metrics):
        super().on_batch_end(step, total_steps, metrics)
        if step == 2:
            (child,) = _ranks()
            child.kill()


def test_a_rank_that_dies_fails_the_run_with_its_reason(bert_without_dropout, sentiment, tmp_path):
    callback = KillRank1()
    with pytest.raises(RuntimeError, match=r"rank 1 of 2 was killed by signal 9"):
        finetune(sentiment, str(bert_without_dropout), tmp_path / "out", TrainConfig(**UNEVEN, devices=2), callback)
    assert len(callback.batches) == 2
    assert _ranks() == []


def _unreadable(message: str):
    raise ValueError(message)


class UnreadableElsewhere(TextDataset):
    """A dataset that rank 0 holds but the other ranks cannot unpickle: their failure, after they have joined."""

    def __reduce__(self):
        return _unreadable, ("rank 1 could not read the rows",)


def test_a_rank_that_fails_fails_the_run_with_its_error(bert_without_dropout, sentiment, tmp_path):
    data = UnreadableElsewhere(sentiment.texts, sentiment.labels, sentiment.label_names)
    with pytest.raises(RuntimeError, match=r"rank 1 of 2 failed: ValueError: rank 1 could not read the rows"):
        finetune(data, str(bert_without_dropout), tmp_path / "out", TrainConfig(**UNEVEN, devices=2))
    assert _ranks() == []


def test_the_other_ranks_end_when_rank_0_is_killed(bert_without_dropout, tmp_path):
    script = f"""
import sys
from mlcore.config import TrainConfig
from mlcore.data import TextDataset
from mlcore.testing import RecordingCallback, sentiment_rows
from mlcore.train import finetune

class Announce(RecordingCallback):
    def on_batch_end(self, step, total_steps, metrics):
        print("step", step, flush=True)
        sys.stdin.readline()  # held here until the test has killed this process

data = TextDataset.from_rows(sentiment_rows(160, seed=0))
finetune(data, {str(bert_without_dropout)!r}, {str(tmp_path / "out")!r}, TrainConfig(**{UNEVEN!r}, devices=2),
         Announce())
"""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    rank0 = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert rank0.stdout.readline().strip() == "step 1"
        others = _ranks(rank0.pid)
        assert len(others) == 1
        rank0.send_signal(signal.SIGKILL)
        rank0.wait()
        gone, alive = psutil.wait_procs(others, timeout=60)
        assert alive == [] and len(gone) == 1
    finally:
        rank0.kill()
        rank0.wait()


def test_a_distillation_on_two_processes_matches_one(finetuned, sentiment, tmp_path):
    # The student is derived from the fine-tuned tiny BERT (dropout on), so compare the first step (before any
    # update: dropout alone differs) and the learning.
    one, two = RecordingCallback(), RecordingCallback()
    config = {**TINY_TRAINING, "alpha": 0.5, "temperature": 2.0}
    single = distill(sentiment, finetuned.result.output_dir, tmp_path / "one", DistillConfig(**config), one)
    double = distill(sentiment, finetuned.result.output_dir, tmp_path / "two", DistillConfig(**config, devices=2), two)
    assert double.steps == single.steps
    first_one, first_two = one.batches[0][2], two.batches[0][2]
    assert first_two["train/soft_loss"] == pytest.approx(first_one["train/soft_loss"], abs=0.05)
    assert first_two["train/hard_loss"] == pytest.approx(first_one["train/hard_loss"], abs=0.05)
    assert double.metrics["test/agreement"] >= 0.85 and double.metrics["test/accuracy"] >= 0.85
    assert _ranks() == []


def test_a_group_splits_a_batch_by_stride_and_weighs_each_part_by_its_rows():
    assert Group(0, 2).shard([10, 11, 12, 13, 14]) == ([10, 12, 14], 3 / 5)
    assert Group(1, 2).shard([10, 11, 12, 13, 14]) == ([11, 13], 2 / 5)
    assert Group(1, 3).shard([7]) == ([7], 0.0)  # no rows of its own: a stand-in row that counts for nothing
    assert sum(Group(r, 3).shard(list(range(10)))[1] for r in range(3)) == pytest.approx(1.0)
