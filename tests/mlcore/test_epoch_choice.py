"""keep_best_epoch ends on the weights of the epoch with the best validation accuracy; early_stopping_patience
stops once validation has not improved for that many epochs. Both are off by default and resume exactly.

These runs train on rows labelled the opposite of their validation rows: the more the model learns, the worse
it validates, so the first epoch is the best by construction and any later one is a worse choice."""

from __future__ import annotations

import pytest
import torch

from mlcore.batching import split_loaders
from mlcore.callbacks import Cancelled
from mlcore.checkpoint import Checkpoints
from mlcore.config import ConfigError, TrainConfig
from mlcore.data import TextDataset
from mlcore.loading import load_for_training
from mlcore.loop import classify_step, fit
from mlcore.testing import RecordingCallback, sentiment_rows
from mlcore.train import loader_options

from .conftest import TINY_TRAINING

SETTINGS = {**TINY_TRAINING, "epochs": 4}  # 96 training rows in batches of 16: 6 steps an epoch
FLIP = {"positive": "negative", "negative": "positive"}
SPLITS = {
    "train": TextDataset.from_rows([(text, FLIP[label]) for text, label in sentiment_rows(96, seed=0)]),
    "valid": TextDataset.from_rows(sentiment_rows(48, seed=1)),
    "test": TextDataset.from_rows(sentiment_rows(16, seed=2)),
}


class Snapshots(RecordingCallback):
    """Keeps the model's weights as they are right after each validation."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model, self.weights = model, []

    def on_evaluate(self, split, step, metrics):
        super().on_evaluate(split, step, metrics)
        self.weights.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})


def _fit(tiny_bert, config, *, stop_after=None, checkpoints=None, resume_from=None):
    torch.manual_seed(config.seed)
    model, tokenizer = load_for_training(str(tiny_bert), SPLITS["train"].label_names)
    loaders = split_loaders(SPLITS, {"inputs": tokenizer}, **loader_options(config, torch.device("cpu")))
    callback = Snapshots(model, stop_after=stop_after)
    fitted = fit(model, classify_step, loaders["train"], loaders["valid"], config, torch.device("cpu"), callback,
                 checkpoints=checkpoints, resume_from=resume_from)  # fmt: skip
    return model, fitted, callback


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _accuracies(callback) -> list[float]:
    return [metrics["val/accuracy"] for split, _, metrics in callback.evaluations if split == "val"]


def test_keep_best_epoch_ends_on_the_best_epochs_weights_and_metrics(tiny_bert):
    model, fitted, callback = _fit(tiny_bert, TrainConfig(**SETTINGS, keep_best_epoch=True))

    accuracies = _accuracies(callback)
    assert len(accuracies) == 4 and accuracies[0] == max(accuracies) > accuracies[-1]  # learning the flip hurts
    assert fitted.best_epoch == 1 and fitted.epochs_run == 4 and not fitted.stopped_early
    assert _same(model.state_dict(), callback.weights[0]) and not _same(callback.weights[0], callback.weights[-1])
    assert fitted.val_metrics == callback.evaluations[0][2]


def test_by_default_the_last_epoch_is_kept(tiny_bert):
    model, fitted, callback = _fit(tiny_bert, TrainConfig(**SETTINGS))
    assert _same(model.state_dict(), callback.weights[-1])
    assert fitted.val_metrics == callback.evaluations[-1][2] and fitted.best_epoch == 1


def test_early_stopping_stops_once_patience_epochs_bring_no_improvement(tiny_bert):
    config = TrainConfig(**{**SETTINGS, "epochs": 8}, early_stopping_patience=2, keep_best_epoch=True)
    model, fitted, callback = _fit(tiny_bert, config)
    assert len(_accuracies(callback)) == 3  # epoch 1 the best; epochs 2 and 3 no better: stop
    assert (fitted.epochs_run, fitted.stopped_early, fitted.steps) == (3, True, 18)
    assert callback.batches[-1][:2] == (18, 48)  # reported against the planned 8 epochs
    assert _same(model.state_dict(), callback.weights[0])


def test_a_resumed_run_keeps_the_best_epoch_it_saw_before_stopping(tiny_bert, tmp_path):
    config = TrainConfig(**SETTINGS, keep_best_epoch=True, checkpoint_every=4)
    whole, _, _ = _fit(tiny_bert, TrainConfig(**SETTINGS, keep_best_epoch=True))

    def checkpoints():
        return Checkpoints.for_run(config, tmp_path, tmp_path / "ckpt", kind="finetune", source="tiny", splits=SPLITS)

    with pytest.raises(Cancelled):
        _fit(tiny_bert, config, stop_after=14, checkpoints=checkpoints())  # past epoch 1's validation
    state = checkpoints().load()
    assert state["step"] == 12 and state["best"]["epoch"] == 1
    resumed, fitted, _ = _fit(tiny_bert, config, checkpoints=checkpoints(), resume_from=state)
    assert fitted.best_epoch == 1 and _same(resumed.state_dict(), whole.state_dict())


def test_patience_must_be_a_whole_number_of_epochs():
    with pytest.raises(ConfigError, match="early_stopping_patience must be in"):
        TrainConfig(early_stopping_patience=0)
    assert TrainConfig().keep_best_epoch is False and TrainConfig().early_stopping_patience is None
