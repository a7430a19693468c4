"""Checkpoints go to output_dir/checkpoint or a given folder, hold what a resume needs, are replaced atomically,
and are removed once the model is saved."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

import mlcore.checkpoint
from mlcore.callbacks import Cancelled
from mlcore.checkpoint import Checkpoints
from mlcore.config import TrainConfig
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING

CONFIG = TrainConfig(**{**TINY_TRAINING, "epochs": 2}, checkpoint_every=3)


def test_a_stopped_run_leaves_a_checkpoint_with_the_state_after_its_last_checkpointed_step(
    tiny_bert, sentiment, tmp_path
):
    callback = RecordingCallback(stop_after=7)
    with pytest.raises(Cancelled):
        finetune(sentiment, str(tiny_bert), tmp_path / "out", CONFIG, callback)
    path = tmp_path / "out" / "checkpoint" / "checkpoint.pt"
    assert callback.checkpoints == [(3, str(path)), (6, str(path))]
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind
    state = torch.load(path, weights_only=True)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (6, 0, 6)
    assert state["config"] == asdict(CONFIG)
    assert state["loss_sum"] == pytest.approx(sum(m["train/loss"] for _, _, m in callback.batches[:6]))
    assert {"model", "optimizer", "scheduler", "rng", "identity"} <= state.keys()
    assert state["optimizer"]["state"][0]["step"].item() == 6
    assert {"torch", "python"} <= state["rng"].keys()


def test_a_given_folder_is_used_and_a_finished_run_removes_its_checkpoint(tiny_bert, sentiment, tmp_path):
    callback = RecordingCallback()
    result = finetune(sentiment, str(tiny_bert), tmp_path / "out", CONFIG, callback, checkpoint_dir=tmp_path / "ckpt")
    assert [step for step, _ in callback.checkpoints] == [3, 6, 9, 12, 15]
    assert {p for _, p in callback.checkpoints} == {str(tmp_path / "ckpt" / "checkpoint.pt")}
    assert not (tmp_path / "ckpt").exists()
    assert not (tmp_path / "out" / "checkpoint").exists()
    assert result.size_bytes == sum(p.stat().st_size for p in (tmp_path / "out").iterdir())


def test_no_checkpoint_is_written_by_default(finetuned):
    assert finetuned.callback.checkpoints == []
    assert not (finetuned.result.output_dir / "checkpoint").exists()


def test_a_write_killed_midway_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    checkpoints = Checkpoints(tmp_path, 1, {"kind": "finetune", "source": "m", "data": "d", "config": {}})
    checkpoints.save({"step": 1, "weights": torch.arange(4)})

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # what a worker being killed looks like from inside

    monkeypatch.setattr(mlcore.checkpoint.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save({"step": 2, "weights": torch.arange(8)})
    monkeypatch.undo()
    state = checkpoints.load()
    assert state["step"] == 1 and torch.equal(state["weights"], torch.arange(4))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
