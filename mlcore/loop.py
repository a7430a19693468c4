"""The training loop shared by fine-tuning and distillation: optimiser steps, callbacks, cancel.

Per batch the host waits for the device once: loss, accuracy and any extra metrics are computed on the device
and fetched together, because the metric stream needs them per batch. On CUDA the next batch is collated and
its (pinned, non-blocking) copy queued before that wait, so the CPU prepares it while the GPU still computes,
and batches without padding replay their forward and backward passes from CUDA graphs (mlcore.graphs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from mlcore.batching import Batch, TrainBatches
from mlcore.callbacks import Callback, Cancelled, Phase
from mlcore.checkpoint import Checkpoints, restore_rng, rng_state
from mlcore.config import TrainConfig
from mlcore.devices import autocast, autocast_dtype, resolve_device, to_device, use_all_cpu_threads
from mlcore.evaluate import evaluate
from mlcore.graphs import GraphedModel
from mlcore.optim import make_optimizer, make_scheduler
from mlcore.parallel import Group
from mlcore.usage import memory_metrics

__all__ = [
    "FitResult", "StepFn", "classify_step", "epoch_choice_metrics", "fit", "resolve_device", "use_all_cpu_threads"
]  # fmt: skip

# One optimisation step's forward pass: (loss to minimise, logits for accuracy, extra metrics to report as
# 0-d tensors, left on the device so that the loop fetches everything in one go). Its first argument is called
# like the model (model(**inputs, **options)): the model itself, or on CUDA a mlcore.graphs.GraphedModel of it.
StepFn = Callable[[Any, Batch], tuple[Tensor, Tensor, dict[str, Tensor]]]
USAGE_EVERY_SECONDS = 1.0  # memory joins a batch's metrics at most this often (a chart over time, not per batch)


@dataclass
class FitResult:
    steps: int
    avg_loss: float  # mean of the batch losses, as the study reports it
    avg_accuracy: float  # mean of the batch accuracies
    val_metrics: dict[str, float]  # the kept epoch's validation metrics; empty without a validation split
    graphed_steps: int = 0  # steps whose forward and backward passes were replayed from a CUDA graph
    best_epoch: int | None = None  # 1-based epoch of the best validation accuracy (None without validation)
    epochs_run: int = 0  # epochs trained: config.epochs, or fewer when early_stopping_patience stopped it
    stopped_early: bool = False


def classify_step(model: Any, batch: Batch) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Plain fine-tuning: cross-entropy against the labels."""
    logits = model(**batch["inputs"]).logits
    return nn.functional.cross_entropy(logits.float(), batch["labels"]), logits, {}


def fit(
    model: nn.Module,
    step_fn: StepFn,
    train_batches: TrainBatches,
    valid_loader: DataLoader,
    config: TrainConfig,
    device: torch.device,
    callback: Callback,
    *,
    checkpoints: Checkpoints | None = None,
    resume_from: dict[str, Any] | None = None,
    valid_reference: list[int] | None = None,
    group: Group | None = None,
) -> FitResult:
    """Train for config.epochs, reporting every batch and validating after every epoch.

    The optimiser and learning-rate schedule are config's (see mlcore.optim); the schedule runs across epochs.
    With `checkpoints`, a checkpoint is written after every checkpoints.every-th step (before that epoch's
    validation, so that a run stopped during validation still has it). `resume_from` is a loaded checkpoint:
    training continues after its step as if it had never stopped, and the steps reported continue its count.
    `valid_reference` is another model's predicted class for each validation row, in the loader's order
    (distillation's teacher): each validation then also reports "val/agreement", the share the model matches.

    With `group` (mlcore.parallel) this process is one rank of a data-parallel run: it trains on its share of
    each global batch through DistributedDataParallel, the batch's metrics are those of the whole global batch,
    and only rank 0 validates (its early-stopping decision is sent to the others); checkpoints are rank 0's too
    (the others get none).
    """
    amp = autocast_dtype(device, config.precision)
    per_epoch = len(train_batches)
    total_steps = config.epochs * per_epoch
    optimizer = make_optimizer(model, config, device)
    scheduler, schedule_every = make_scheduler(optimizer, config, total_steps)
    step, loss_sum, accuracy_sum = 0, 0.0, 0.0
    start_epoch, start_batch = 0, 0
    val_metrics: dict[str, float] = {}
    best = _Best()
    if resume_from is not None:
        model.load_state_dict(resume_from["model"])
        optimizer.load_state_dict(resume_from["optimizer"])
        scheduler.load_state_dict(resume_from["scheduler"])
        step, loss_sum, accuracy_sum = resume_from["step"], resume_from["loss_sum"], resume_from["accuracy_sum"]
        start_epoch, start_batch = resume_from["epoch"], resume_from["batch_in_epoch"]
        best = _Best.from_state(resume_from.get("best"))
        val_metrics = dict(resume_from.get("val_metrics") or {})
        # Last: building the model drew from the RNG, and dropout must now draw what it would have drawn.
        restore_rng(resume_from["rng"])
    if group is not None:
        group.seed_dropout(config.seed, step)
    runner = _runner(model, config, device, group)

    model.train()
    stopped_early, epochs_run = False, start_epoch
    sampled_at = -float("inf")  # when memory was last added to a batch's metrics
    for epoch in range(start_epoch, config.epochs):
        epochs_run = epoch + 1
        callback.on_phase(Phase.TRAINING)
        i = start_batch if epoch == start_epoch else 0
        batches = _on_device(train_batches.epoch(epoch, start=i, shard=group.shard if group else None), device)
        upcoming = next(batches, None)
        last_report = time.perf_counter()
        while upcoming is not None:
            if callback.should_stop():
                raise Cancelled(f"cancelled after {step} of {total_steps} steps")
            batch, i = upcoming, i + 1
            lr = optimizer.param_groups[0]["lr"]
            with autocast(device, amp):
                loss, logits, extra = step_fn(runner, batch)
            optimizer.zero_grad(set_to_none=True)
            # A rank's loss weighed by its share of the global batch: DDP's average of the ranks' gradients is
            # then the gradient of the whole batch's mean loss, as on one device.
            (loss if group is None else loss * (group.size * batch["share"])).backward()
            optimizer.step()
            step += 1
            if step % schedule_every == 0:
                scheduler.step()

            accuracy = (logits.argmax(dim=-1) == batch["labels"]).float().mean()
            values = torch.stack([loss.detach().float(), accuracy, *(v.detach().float() for v in extra.values())])
            rows = batch["labels"].shape[0]
            if group is not None:  # the global batch's metrics: each rank's weighed by its share, and its rows
                real = (batch["share"] > 0).float()
                values = group.sum(torch.cat([values * batch["share"], (real * rows).reshape(1)]))
            upcoming = next(batches, None)  # CPU work that overlaps the GPU's, before the one sync below
            batch_loss, batch_accuracy, *extra_values = values.tolist()
            if group is not None:
                rows = int(extra_values.pop())
            now = time.perf_counter()  # after the sync: the batch is done on the device too
            seconds, last_report = max(now - last_report, 1e-9), now
            loss_sum += batch_loss
            accuracy_sum += batch_accuracy
            metrics = {
                "train/loss": batch_loss,
                "train/accuracy": batch_accuracy,
                "lr": lr,
                "epoch": epoch + i / per_epoch,
                # Rows over the wall time since the last report: the whole step as the job lives it, data and
                # callback included.
                "train/samples_per_s": rows / seconds,
            }
            if now - sampled_at >= USAGE_EVERY_SECONDS:
                sampled_at = now
                metrics |= memory_metrics(device)
            callback.on_batch_end(step, total_steps, metrics | dict(zip(extra, extra_values, strict=True)))

            if checkpoints is not None and checkpoints.due(step):
                callback.before_checkpoint(step)
                state = {
                    "step": step,
                    "epoch": epoch,
                    "batch_in_epoch": i,
                    "loss_sum": loss_sum,
                    "accuracy_sum": accuracy_sum,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": rng_state(),
                    "config": asdict(config),
                    "best": best.state(),
                    "val_metrics": val_metrics,
                }
                callback.on_checkpoint(step, str(checkpoints.save(state)))

        if len(valid_loader.dataset):  # type: ignore[arg-type]
            stop = False
            if group is None or group.is_main:
                callback.on_phase(Phase.VALIDATING)
                loss_value, y_true, y_pred = evaluate(
                    model, valid_loader, device, should_stop=callback.should_stop, precision=config.precision
                )
                correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
                val_metrics = {"val/loss": loss_value, "val/accuracy": correct / len(y_true)}
                if valid_reference is not None:
                    same = sum(p == r for p, r in zip(y_pred, valid_reference, strict=True))
                    val_metrics["val/agreement"] = same / len(y_pred)
                callback.on_evaluate("val", step, dict(val_metrics))
                best.consider(epoch + 1, val_metrics, model if config.keep_best_epoch else None)
                patience = config.early_stopping_patience
                stop = patience is not None and epochs_run - best.epoch >= patience and epochs_run < config.epochs
            if group is not None:
                stop = group.from_main(stop, device)
            if stop:
                stopped_early = True
                break

    if config.keep_best_epoch and best.weights is not None and best.epoch != epochs_run:
        model.load_state_dict(best.weights)  # the test and the saved model are the best epoch's
        val_metrics = dict(best.metrics)
    graphed = runner.replays if isinstance(runner, GraphedModel) else 0
    return FitResult(
        step, loss_sum / max(step, 1), accuracy_sum / max(step, 1), val_metrics, graphed,
        best_epoch=best.epoch or None, epochs_run=epochs_run, stopped_early=stopped_early,
    )  # fmt: skip


def epoch_choice_metrics(fitted: FitResult, config: TrainConfig) -> dict[str, Any]:
    """What keep_best_epoch and early_stopping_patience decided, for the model's metrics (nothing when off)."""
    out: dict[str, Any] = {}
    if (config.keep_best_epoch or config.early_stopping_patience) and fitted.best_epoch is not None:
        out["val/best_epoch"] = fitted.best_epoch
    if config.early_stopping_patience:
        out["train/epochs"] = fitted.epochs_run
    return out


@dataclass
class _Best:
    """The epoch with the best validation accuracy so far (the earliest on a tie), and with keep_best_epoch a
    CPU copy of its weights: one model's worth of host memory, and of checkpoint size."""

    epoch: int = 0
    metrics: dict[str, float] | None = None
    weights: dict[str, Tensor] | None = None

    def consider(self, epoch: int, metrics: dict[str, float], model: nn.Module | None) -> None:
        if self.metrics is not None and metrics["val/accuracy"] <= self.metrics["val/accuracy"]:
            return
        self.epoch, self.metrics = epoch, dict(metrics)
        if model is not None:
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "metrics": self.metrics, "weights": self.weights}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> _Best:
        return cls(**state) if state else cls()


def _runner(model: nn.Module, config: TrainConfig, device: torch.device, group: Group | None) -> Any:
    """What the step function calls: in a multi-device run `model` in DistributedDataParallel (which broadcasts
    rank 0's weights now, and averages the ranks' gradients in every backward pass); else on CUDA (unless
    config.cuda_graphs is off) a GraphedModel of `model`. Graphs are not used with DDP, whose gradient
    all-reduces run outside any graph."""
    if group is not None:
        # No buffer sync before each forward pass: a transformer's buffers (position ids) never change, so sending them
        # every step would be a collective for nothing (DDP still makes them equal once, at construction).
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)
    return GraphedModel(model) if config.cuda_graphs and device.type == "cuda" else model


def _on_device(batches: Iterator[Batch], device: torch.device) -> Iterator[Batch]:
    return (to_device(batch, device) for batch in batches)
