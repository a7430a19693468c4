"""Fine-tuning: a base model plus a labelled dataset in, a saved classifier folder out."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from mlcore import parallel
from mlcore.artifacts import folder_size, save_model
from mlcore.batching import split_loaders
from mlcore.calibration import calibration_metrics, fit_temperature
from mlcore.callbacks import Callback, Phase
from mlcore.checkpoint import CheckpointMismatch, Checkpoints
from mlcore.config import TrainConfig
from mlcore.data import DataError, TextDataset, relabel, split_positions, stratified_order, unknown_labels
from mlcore.devices import resolve_device, use_all_cpu_threads
from mlcore.evaluate import SCORING_PRECISION, agreement, score_logits, split_logits
from mlcore.loading import ModelLoadError, check_max_length, load_for_training
from mlcore.loop import classify_step, epoch_choice_metrics, fit
from mlcore.parallel import Group
from mlcore.predictions import in_row_order, row_predictions

__all__ = [
    "CheckpointMismatch",
    "ModelLoadError",
    "TrainResult",
    "begin_info",
    "evaluate_test_split",
    "finetune",
    "fit_calibration",
    "loader_options",
    "make_splits",
    "rank_device",
    "split_indices",
    "splits_at",
]


@dataclass
class TrainResult:
    output_dir: Path
    label_names: list[str]
    # Flat keys: train/avg_loss, train/avg_accuracy, val/loss, val/accuracy (absent without a validation
    # split), test/loss, test/accuracy, test/macro_f1, test/report, ece, reliability (absent without a test
    # split; ece_uncalibrated too with config.calibrate), and for a distillation val/agreement, test/agreement.
    metrics: dict[str, Any]
    num_parameters: int
    size_bytes: int  # everything in output_dir
    steps: int
    train_rows: int
    graphed_steps: int = 0  # steps replayed from CUDA graphs (mlcore.graphs); 0 on CPU
    temperature: float = 1.0  # the model serves softmax(logits / temperature); fitted with config.calibrate
    # Each test row's prediction (mlcore.predictions.row_predictions), from the pass that made test/report.
    test_rows: list[dict[str, Any]] | None = None

    def to_json(self) -> str:
        """The result as JSON (from_json reads it back), so that a run stopped after training can carry on."""
        return json.dumps({**asdict(self), "output_dir": str(self.output_dir)})

    @classmethod
    def from_json(cls, text: str) -> TrainResult:
        fields = json.loads(text)
        return cls(**{**fields, "output_dir": Path(fields["output_dir"])})


def finetune(
    dataset: TextDataset,
    base_model: str,
    output_dir: str | os.PathLike[str],
    config: TrainConfig,
    callback: Callback | None = None,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    test_dataset: TextDataset | None = None,
    group: Group | None = None,
) -> TrainResult:
    """Fine-tune `base_model` (catalogue id, hub id or folder) on `dataset` and save it to output_dir.

    With test_dataset (an official test set such as IMDB's), the final test is on its rows and `dataset` is
    split into train and valid only (see make_splits).

    With config.checkpoint_every > 0, a checkpoint is written to checkpoint_dir (default: output_dir/checkpoint)
    every that many steps. With resume, a checkpoint found in checkpoint_dir is continued from, exactly (see
    mlcore.checkpoint); it is removed once the model is saved.

    Raises ModelLoadError when the base model cannot be loaded, DataError when test_dataset has labels that
    dataset lacks, CheckpointMismatch when the checkpoint to resume from is another run's, and Cancelled when
    the callback asks to stop (no model is saved then; checkpoints stay for a resume).

    With config.devices > 1 the run is data-parallel over that many processes, this one rank 0 (mlcore.parallel:
    the others are started here and gone when this returns or raises); `group` is for those processes' own calls.
    """
    callback = callback or Callback()
    if config.devices > 1 and group is None:
        options = dict(callback=callback, checkpoint_dir=checkpoint_dir, resume=resume, test_dataset=test_dataset)
        return parallel.run(finetune, (dataset, base_model, output_dir, config), options, config.devices, config.device)
    device = rank_device(config, group)

    # Data: the same seed always gives the same rows to each split.
    positions = split_indices(dataset, config, test_dataset)
    splits = splits_at(dataset, positions, test_dataset)

    # Checkpoint: read first, so that one from another run fails before any model is loaded. Every rank resumes
    # from it; only rank 0 writes.
    checkpoints = Checkpoints.for_run(
        config, output_dir, checkpoint_dir, kind="finetune", source=base_model, splits=splits
    )
    resume_from = checkpoints.load() if resume else None

    # Model: seeded first, because the new classification head is drawn from torch's RNG.
    torch.manual_seed(config.seed)
    callback.on_phase(Phase.LOADING)
    model, tokenizer = load_for_training(base_model, dataset.label_names)
    check_max_length(model, config.max_length)
    model.to(device)
    callback.on_phase(Phase.TOKENISING)
    loaders = split_loaders(splits, {"inputs": tokenizer}, **loader_options(config, device))
    num_parameters = sum(p.numel() for p in model.parameters())
    callback.on_train_begin(begin_info(splits, loaders, config, device, num_parameters, resume_from))

    # Loop: AdamW + the configured schedule, per-batch callbacks, validation after every epoch, checkpoints.
    fitted = fit(
        model, classify_step, loaders["train"], loaders["valid"], config, device, callback,
        checkpoints=checkpoints if group is None or group.is_main else None, resume_from=resume_from, group=group,
    )  # fmt: skip
    if group is not None and not group.is_main:
        return None  # type: ignore[return-value]  # another rank's part ends with training; rank 0 goes on
    resume_from = None  # its tensors are in the model now; free the copies
    metrics: dict[str, Any] = {"train/avg_loss": fitted.avg_loss, "train/avg_accuracy": fitted.avg_accuracy}
    metrics |= fitted.val_metrics | epoch_choice_metrics(fitted, config)

    # Calibration (config.calibrate): one temperature fitted on the validation rows.
    temperature = fit_calibration(model, loaders["valid"], device, callback, config)

    # Evaluation: the test rows (held out, or test_dataset's), once.
    tested, test_rows = evaluate_test_split(
        model, loaders["test"], dataset.label_names, device, callback, fitted.steps,
        temperature=temperature, rows=splits["test"], positions=positions["test"],
    )  # fmt: skip
    metrics |= tested

    # Save: HF folder + distillery.json, which inference reads the labels, max_length and truncation from.
    manifest = {
        "kind": "finetune",
        "base_model": base_model,
        "label_names": dataset.label_names,
        "max_length": config.max_length,
        "truncation": config.truncation,
        "temperature": temperature or 1.0,
        "config": asdict(config),
        "steps": fitted.steps,
        "metrics": metrics,
    }
    callback.on_phase(Phase.SAVING)
    save_model(output_dir, model, tokenizer, manifest)
    checkpoints.discard()
    size = folder_size(output_dir)
    return TrainResult(
        output_dir=Path(output_dir),
        label_names=list(dataset.label_names),
        metrics=metrics,
        num_parameters=num_parameters,
        size_bytes=size,
        steps=fitted.steps,
        train_rows=len(splits["train"]),
        graphed_steps=fitted.graphed_steps,
        temperature=temperature or 1.0,
        test_rows=test_rows,
    )


def make_splits(
    dataset: TextDataset, config: TrainConfig, test_dataset: TextDataset | None = None
) -> dict[str, TextDataset]:
    """{"train", "valid", "test"}, split with the config's fractions and split_seed (else seed), then capped.

    With test_dataset, that is the test split (its labels renumbered to dataset's by name) and dataset is
    split into train and valid only; test_fraction is ignored. Caps keep a prefix, which is itself stratified
    (see split_dataset); a given test set is put in stratified order first, since one sorted by label (IMDB's
    is) would otherwise lose whole classes to the cap.
    """
    return splits_at(dataset, split_indices(dataset, config, test_dataset), test_dataset)


def splits_at(
    dataset: TextDataset, positions: dict[str, list[int]], test_dataset: TextDataset | None = None
) -> dict[str, TextDataset]:
    """The splits at split_indices' positions; raises DataError when test_dataset has labels dataset lacks."""
    tests = dataset if test_dataset is None else _as_test_split(test_dataset, dataset.label_names)
    return {
        "train": dataset.subset(positions["train"]),
        "valid": dataset.subset(positions["valid"]),
        "test": tests.subset(positions["test"]),
    }


def split_indices(
    dataset: TextDataset, config: TrainConfig, test_dataset: TextDataset | None = None
) -> dict[str, list[int]]:
    """make_splits' rows as positions: train and valid in dataset, test in test_dataset when given (else in
    dataset). A stored test row keeps its position, so two models' rows can be matched."""
    seed = config.seed if config.split_seed is None else config.split_seed
    if test_dataset is None:
        valid, test_rows, train = split_positions(
            dataset, valid_fraction=config.valid_fraction, test_fraction=config.test_fraction, seed=seed
        )
    else:
        valid, _, train = split_positions(dataset, valid_fraction=config.valid_fraction, test_fraction=0.0, seed=seed)
        test_rows = list(range(len(test_dataset)))
        if config.max_eval_samples is not None:
            test_rows = stratified_order(test_dataset, seed)  # by label name, as after relabelling
    if config.max_train_samples is not None:
        train = train[: config.max_train_samples]
    if config.max_eval_samples is not None:
        valid, test_rows = valid[: config.max_eval_samples], test_rows[: config.max_eval_samples]
    return {"train": train, "valid": valid, "test": test_rows}


def _as_test_split(test_dataset: TextDataset, label_names: list[str]) -> TextDataset:
    unknown = unknown_labels(test_dataset, label_names)
    if unknown:
        raise DataError(
            f"the test set has labels the training data does not have: {', '.join(map(repr, unknown))}; "
            f"the training data's labels are: {', '.join(map(repr, label_names))}"
        )
    return relabel(test_dataset, label_names)


def rank_device(config: TrainConfig, group: Group | None) -> torch.device:
    """The device this process trains on (in a multi-device run, its rank's), with the CPU threads it may use."""
    device = resolve_device(config.device)
    use_all_cpu_threads(device)
    if group is not None:
        device = group.device(device)
        group.share_cpu_threads(device)
    return device


def loader_options(config: TrainConfig, device: torch.device) -> dict[str, Any]:
    """split_loaders' settings from a config: pinned memory only where it pays, for copies to CUDA."""
    return {
        "max_length": config.max_length,
        "truncation": config.truncation,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "group_by_length": config.group_by_length,
        "pin_memory": device.type == "cuda",
        "cuda_graphs": device.type == "cuda" and config.cuda_graphs and config.devices == 1,  # as mlcore.loop decides
    }


def evaluate_test_split(
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    label_names: list[str],
    device: torch.device,
    callback: Callback,
    step: int,
    *,
    temperature: float | None = None,
    reference_logits: torch.Tensor | None = None,
    rows: TextDataset | None = None,
    positions: list[int] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """Score the test split and report it as split "test" (the full report and the reliability diagram stay out
    of the callback).

    From the one pass's logits: the scores, the calibration (mlcore.calibration: "ece" and "reliability" of the
    probabilities served at `temperature`, with "ece_uncalibrated" beside them when a temperature was fitted) and,
    with `reference_logits` (another model's on the same rows in the same order: the teacher's), "test/agreement".
    Returns the metrics and, given the split's rows and their positions in their dataset, each row's prediction
    from the same pass, at the served probabilities (mlcore.predictions.row_predictions); None without them.
    """
    if not len(loader.dataset):  # type: ignore[arg-type]
        return {}, None
    callback.on_phase(Phase.TESTING)
    logits, labels = split_logits(
        model, loader, device, should_stop=callback.should_stop, precision=SCORING_PRECISION
    )
    metrics = score_logits(logits, labels, label_names, "test")
    if reference_logits is not None:
        metrics["test/agreement"] = agreement(logits, reference_logits)
    callback.on_evaluate("test", step, {k: v for k, v in metrics.items() if k != "test/report"})
    metrics |= calibration_metrics(logits, labels, temperature)
    if rows is None or positions is None:
        return metrics, None
    truncated = getattr(loader.dataset, "truncated", [False] * len(rows))
    probabilities, predicted = in_row_order(loader, logits, temperature)
    return metrics, row_predictions(positions, rows.texts, rows.labels, probabilities, predicted, truncated)


def fit_calibration(
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    callback: Callback,
    config: TrainConfig,
) -> float | None:
    """With config.calibrate, the temperature that minimises the NLL of the validation rows (mlcore.calibration);
    None otherwise, or without validation rows."""
    if not config.calibrate or not len(loader.dataset):  # type: ignore[arg-type]
        return None
    callback.on_phase(Phase.CALIBRATING)
    logits, labels = split_logits(
        model, loader, device, should_stop=callback.should_stop, precision=SCORING_PRECISION
    )
    return fit_temperature(logits, labels)


def begin_info(
    splits: dict[str, TextDataset],
    loaders: dict[str, Any],
    config: TrainConfig,
    device: torch.device,
    num_parameters: int,
    resume_from: dict[str, Any] | None,
) -> dict[str, Any]:
    """What on_train_begin reports (see Callback.on_train_begin)."""
    return {
        "total_steps": config.epochs * len(loaders["train"]),
        "train_rows": len(splits["train"]),
        "valid_rows": len(splits["valid"]),
        "test_rows": len(splits["test"]),
        "label_names": list(splits["train"].label_names),
        "device": str(device),
        "num_parameters": num_parameters,
        "resumed_from_step": resume_from["step"] if resume_from is not None else 0,
        "group_by_length": loaders["train"].group_by_length,  # the decision "auto" came to
    }
