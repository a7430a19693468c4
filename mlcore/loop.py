"""The training loop shared by fine-tuning and distillation: AdamW, ExponentialLR, callbacks, cancel."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from mlcore.batching import Batch, to_device
from mlcore.callbacks import Callback, Cancelled
from mlcore.config import TrainConfig
from mlcore.evaluate import evaluate

# One optimisation step's forward pass: (loss to minimise, logits for accuracy, extra metrics to report).
StepFn = Callable[[nn.Module, Batch], tuple[Tensor, Tensor, dict[str, float]]]


@dataclass
class FitResult:
    steps: int
    avg_loss: float  # mean of the batch losses, as the study reports it
    avg_accuracy: float  # mean of the batch accuracies
    val_metrics: dict[str, float]  # the last epoch's validation metrics; empty without a validation split


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else CPU; asking for CUDA on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was requested but CUDA is not available on this machine")
    return device


def use_all_cpu_threads(device: torch.device) -> None:
    # torch may start with fewer threads than cores; an operator's OMP_NUM_THREADS always wins.
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)


def classify_step(model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor, dict[str, float]]:
    """Plain fine-tuning: cross-entropy against the labels."""
    logits = model(**batch["inputs"]).logits
    return nn.functional.cross_entropy(logits, batch["labels"]), logits, {}


def fit(
    model: nn.Module,
    step_fn: StepFn,
    train_loader: DataLoader,
    valid_loader: DataLoader,
    config: TrainConfig,
    device: torch.device,
    callback: Callback,
) -> FitResult:
    """Train for config.epochs, reporting every batch and validating after every epoch.

    The learning rate starts at config.learning_rate and is multiplied by lr_gamma after every
    lr_step_every batches, across epochs (the study's ExponentialLR schedule).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)
    per_epoch = len(train_loader)
    total_steps = config.epochs * per_epoch
    step, loss_sum, accuracy_sum = 0, 0.0, 0.0
    val_metrics: dict[str, float] = {}

    model.train()
    for epoch in range(config.epochs):
        for i, batch in enumerate(train_loader, 1):
            if callback.should_stop():
                raise Cancelled(f"cancelled after {step} of {total_steps} steps")
            batch = to_device(batch, device)
            lr = optimizer.param_groups[0]["lr"]
            loss, logits, extra = step_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % config.lr_step_every == 0:
                scheduler.step()

            batch_loss = loss.item()
            batch_accuracy = (logits.argmax(dim=-1) == batch["labels"]).float().mean().item()
            loss_sum += batch_loss
            accuracy_sum += batch_accuracy
            metrics = {
                "train/loss": batch_loss,
                "train/accuracy": batch_accuracy,
                "lr": lr,
                "epoch": epoch + i / per_epoch,
            }
            callback.on_batch_end(step, total_steps, metrics | extra)

        if len(valid_loader.dataset):  # type: ignore[arg-type]
            loss_value, y_true, y_pred = evaluate(model, valid_loader, device, should_stop=callback.should_stop)
            correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
            val_metrics = {"val/loss": loss_value, "val/accuracy": correct / len(y_true)}
            callback.on_evaluate("val", step, dict(val_metrics))

    return FitResult(step, loss_sum / max(step, 1), accuracy_sum / max(step, 1), val_metrics)
