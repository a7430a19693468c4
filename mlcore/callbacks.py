"""How training reports progress and learns that it should stop.

A job runner subclasses Callback (in the manner of HF's TrainerCallback) and hands it to finetune() or
distill(). Metric keys are short and namespaced: "train/loss", "val/accuracy", "lr".
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    """What a run is doing, as on_phase reports it: the stretches between batches can take minutes on a CPU."""

    LOADING = "loading the model"
    TOKENISING = "tokenising"
    TEACHER_LOGITS = "computing the teacher's logits"
    TRAINING = "training"
    VALIDATING = "validating"
    CALIBRATING = "fitting the temperature"
    TESTING = "testing"
    SAVING = "saving the model"


class Cancelled(Exception):
    """Training stopped because Callback.should_stop() returned True; no model was saved (checkpoints stay)."""


class Callback:
    """Does nothing; override what you need. Every method is called from the training thread."""

    def on_train_begin(self, info: dict[str, Any]) -> None:
        """Once, before the first batch.

        info: total_steps, train_rows, valid_rows, test_rows, label_names, device, num_parameters,
        group_by_length (whether batches are grouped by length, as "auto" decided), and
        resumed_from_step: the step of the checkpoint this run continues from (0 when it starts fresh; the
        first on_batch_end is then for step resumed_from_step + 1). distill adds teacher_num_parameters.
        """

    def on_phase(self, phase: Phase) -> None:
        """When a run starts a stretch of work, in this order: LOADING, TOKENISING, TEACHER_LOGITS (distillation's
        pass before training), then TRAINING and VALIDATING for each epoch, CALIBRATING (with config.calibrate),
        TESTING, SAVING."""

    def on_batch_end(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
        """After each optimiser step; `step` counts from 1 to total_steps across all epochs.

        metrics: "train/loss", "train/accuracy" (this batch), "lr" (the rate this batch used), "epoch"
        (fractional: 0.5 is half-way through the first epoch) and "train/samples_per_s" (the batch's rows over
        the wall time since the previous report); at most once a second "system/rss_mb" (the process's resident
        memory) and on CUDA "system/gpu_memory_mb" (what PyTorch holds on the device), in MiB (mlcore.usage).
        Distillation adds "train/soft_loss" (the KL part, times T^2) and "train/hard_loss" (the cross-entropy
        part), "train/agreement" (the share of the batch's rows whose top class is the teacher's), and
        "train/hidden_loss" when its hidden_loss_weight is above 0.
        """

    def before_checkpoint(self, step: int) -> None:
        """Just before a checkpoint of the state after `step` is written; raising stops the run without it (a
        job runner whose run was replaced must not write into the checkpoint its successor reads)."""

    def on_checkpoint(self, step: int, path: str) -> None:
        """After a checkpoint of the state after `step` was written to `path` (config.checkpoint_every)."""

    def on_evaluate(self, split: str, step: int, metrics: dict[str, float]) -> None:
        """After an evaluation: split "val" after each epoch ("val/loss", "val/accuracy"), split "test" once
        at the end ("test/loss", "test/accuracy", "test/macro_f1"). Losses are cross-entropy. Distillation adds
        "val/agreement" and "test/agreement": the share of the rows whose top class is the teacher's."""

    def should_stop(self) -> bool:
        """Polled before every batch (training and evaluation); True makes training raise Cancelled."""
        return False
