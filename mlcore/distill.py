"""Distillation: a trained teacher's soft predictions plus the labels train a smaller student.

The loss is alpha * T^2 * KL(teacher || student at temperature T) + (1 - alpha) * cross-entropy, plus, with
hidden_loss_weight > 0, that weight times the mean squared error between each derived-student layer's hidden
states and those of the teacher layer it was copied from (mlcore.losses). The student is a catalogue model, or
the teacher with some of its layers kept (mlcore.students.layers_to_keep: every other one by default).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from mlcore import parallel
from mlcore.artifacts import folder_size, save_model
from mlcore.batching import Batch, split_loaders
from mlcore.callbacks import Callback, Phase
from mlcore.checkpoint import Checkpoints
from mlcore.config import ConfigError, DistillConfig
from mlcore.data import DataError, TextDataset, relabel, unknown_labels
from mlcore.evaluate import SCORING_PRECISION, logits_by_row, score_logits, split_logits
from mlcore.loading import check_max_length, load_for_training, load_trained
from mlcore.loop import epoch_choice_metrics, fit
from mlcore.losses import batch_agreement, distillation_loss, hidden_state_loss
from mlcore.parallel import Group
from mlcore.students import derive_student, layers_to_keep
from mlcore.train import (
    TrainResult,
    begin_info,
    evaluate_test_split,
    fit_calibration,
    loader_options,
    rank_device,
    split_indices,
    splits_at,
)

__all__ = ["align_labels", "distill", "distillation_loss", "hidden_state_loss", "same_tokenizer"]


def distill(
    dataset: TextDataset,
    teacher_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    config: DistillConfig,
    callback: Callback | None = None,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    test_dataset: TextDataset | None = None,
    group: Group | None = None,
) -> TrainResult:
    """Distil the model saved in teacher_dir into a student and save the student to output_dir.

    The student is derived from the teacher (config.student None: every other layer, or config.student_layers
    evenly spaced ones), or a catalogue/hub/folder model with a new head. With the teacher's dataset and seed,
    the splits are the teacher's own, so neither model has seen the test rows. Raises DataError when the
    dataset has labels the teacher does not know. Checkpoints, resume and test_dataset work as in finetune();
    a checkpoint holds the student only, since the teacher does not change. config.devices and `group` work as
    in finetune(); every rank computes the teacher's logits for all training rows (the pass costs what it costs on
    one device, and each rank then reads its own rows' logits by position).
    """
    callback = callback or Callback()
    if config.devices > 1 and group is None:
        options = dict(callback=callback, checkpoint_dir=checkpoint_dir, resume=resume, test_dataset=test_dataset)
        return parallel.run(distill, (dataset, teacher_dir, output_dir, config), options, config.devices, config.device)
    device = rank_device(config, group)
    main = group is None or group.is_main

    # Teacher: its label names fix the label ids; the dataset is mapped onto them by name.
    callback.on_phase(Phase.LOADING)
    teacher, teacher_tokenizer, label_names, _ = load_trained(teacher_dir)
    dataset = align_labels(dataset, label_names)

    # Data: the same split as fine-tuning.
    positions = split_indices(dataset, config, test_dataset)
    splits = splits_at(dataset, positions, test_dataset)

    # Checkpoint: read first, so that one from another run fails before the student is built.
    checkpoints = Checkpoints.for_run(
        config, output_dir, checkpoint_dir, kind="distill", source=str(teacher_dir), splits=splits
    )
    resume_from = checkpoints.load() if resume else None

    # Student: seeded first, because a new classification head is drawn from torch's RNG.
    torch.manual_seed(config.seed)
    kept: list[int] | None = None
    if config.student is None:
        try:
            kept = layers_to_keep(teacher.config.num_hidden_layers, config.student_layers)
        except ValueError as e:
            raise ConfigError(f"student_layers: {e}") from None
        student, tokenizer = derive_student(teacher, kept), teacher_tokenizer
    else:
        student, tokenizer = load_for_training(config.student, label_names)
    teacher.requires_grad_(False).eval().to(device)
    student.to(device)
    for model in (teacher, student):
        check_max_length(model, config.max_length)

    # Batches carry the teacher's own encodings only when its tokenizer differs from the student's.
    tokenizers = {"inputs": tokenizer}
    if not same_tokenizer(tokenizer, teacher_tokenizer):
        tokenizers["teacher_inputs"] = teacher_tokenizer
    teacher_key = "teacher_inputs" if "teacher_inputs" in tokenizers else "inputs"
    callback.on_phase(Phase.TOKENISING)
    loaders = split_loaders(splits, tokenizers, **loader_options(config, device))

    # Hidden states are asked for only when the loss reads them: returning them costs memory for every layer.
    with_hidden = config.hidden_loss_weight > 0
    teacher_logits: Tensor | None = None  # one row per training row, once computed (below)

    def step(model: Any, batch: Batch) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        if teacher_logits is not None:
            teacher_out_logits, teacher_hidden = teacher_logits[batch["index"]], None
        else:
            # no_grad rather than inference_mode: inference tensors cannot be saved for the KL's backward pass.
            with torch.no_grad():
                teacher_out = teacher(**batch[teacher_key], output_hidden_states=with_hidden)
            teacher_out_logits, teacher_hidden = teacher_out.logits.float(), teacher_out.hidden_states
        out = model(**batch["inputs"], output_hidden_states=with_hidden)
        total, soft, hard = distillation_loss(
            out.logits.float(), teacher_out_logits, batch["labels"], alpha=config.alpha, temperature=config.temperature
        )
        extra = {
            "train/soft_loss": soft, "train/hard_loss": hard,
            "train/agreement": batch_agreement(out.logits, teacher_out_logits),
        }  # fmt: skip
        if teacher_hidden is not None and kept is not None:
            # hidden_states[0] is the embedding output; layer i's output is hidden_states[i + 1].
            hidden = hidden_state_loss(
                [out.hidden_states[j + 1] for j in range(len(kept))],
                [teacher_hidden[i + 1] for i in kept],
                batch["inputs"].get("attention_mask"),
            )
            total = total + config.hidden_loss_weight * hidden
            extra["train/hidden_loss"] = hidden
        return total, out.logits, extra

    num_parameters = sum(p.numel() for p in student.parameters())
    info = begin_info(splits, loaders, config, device, num_parameters, resume_from)
    callback.on_train_begin(info | {"teacher_num_parameters": sum(p.numel() for p in teacher.parameters())})

    # Teacher logits: one pass over the training rows in inference mode, shortest first, instead of a teacher
    # forward in every step. The teacher is frozen and in eval mode, so every epoch reads the same values, and
    # the pass pads little; on a GPU, where a small batch's cost is mostly kernel launches, it runs 4x the
    # batch. The hidden-state loss reads the teacher's layers, too many to keep, so it runs the teacher in
    # every step.
    if not with_hidden:
        callback.on_phase(Phase.TEACHER_LOGITS)
        pass_batch = config.batch_size * (4 if device.type == "cuda" else 1)
        teacher_logits = logits_by_row(
            teacher, loaders["train"].by_length(pass_batch), len(splits["train"]), device,
            inputs_key=teacher_key, should_stop=callback.should_stop, precision=config.precision,
        )  # fmt: skip
    # The teacher's answers on the validation rows, once (it does not change): each validation reports how often
    # the student gives the same.
    teacher_valid = None
    if main:  # the other ranks do not validate
        teacher_valid = teacher_predictions(teacher, loaders["valid"], device, teacher_key, callback, config)

    # Loop: the fine-tuning loop with the distillation loss.
    fitted = fit(
        student, step, loaders["train"], loaders["valid"], config, device, callback,
        checkpoints=checkpoints if main else None, resume_from=resume_from, valid_reference=teacher_valid, group=group,
    )  # fmt: skip
    if not main:
        return None  # type: ignore[return-value]  # another rank's part ends with training; rank 0 goes on
    resume_from = None  # its tensors are in the student now; free the copies
    metrics: dict[str, Any] = {"train/avg_loss": fitted.avg_loss, "train/avg_accuracy": fitted.avg_accuracy}
    metrics |= fitted.val_metrics | epoch_choice_metrics(fitted, config)

    # Calibration (config.calibrate): the student's temperature, fitted on the validation rows.
    temperature = fit_calibration(student, loaders["valid"], device, callback, config)

    # Evaluation: teacher and student on the same test rows, and how often they agree.
    teacher_test = None
    if len(loaders["test"].dataset):
        teacher_test, test_labels = split_logits(
            teacher, loaders["test"], device,
            inputs_key=teacher_key, should_stop=callback.should_stop, precision=SCORING_PRECISION,
        )  # fmt: skip
    tested, test_rows = evaluate_test_split(
        student, loaders["test"], label_names, device, callback, fitted.steps,
        temperature=temperature, reference_logits=teacher_test, rows=splits["test"], positions=positions["test"],
    )  # fmt: skip
    metrics |= tested
    if teacher_test is not None:
        teacher_scores = score_logits(teacher_test, test_labels, label_names, "teacher/test")
        metrics["teacher/test/accuracy"] = teacher_scores["teacher/test/accuracy"]
        metrics["teacher/test/macro_f1"] = teacher_scores["teacher/test/macro_f1"]
        if teacher_scores["teacher/test/accuracy"] > 0:
            metrics["student/accuracy_retained"] = metrics["test/accuracy"] / teacher_scores["teacher/test/accuracy"]

    # Save: the student with its tokenizer; distillery.json records the teacher.
    manifest = {
        "kind": "distill",
        "teacher": str(teacher_dir),
        "base_model": config.student if config.student is not None else str(teacher_dir),
        "student": config.student if config.student is not None else f"derived: teacher layers {kept}",
        "student_layers_kept": kept,
        "label_names": list(label_names),
        "max_length": config.max_length,
        "truncation": config.truncation,
        "temperature": temperature or 1.0,
        "config": asdict(config),
        "steps": fitted.steps,
        "metrics": metrics,
    }
    callback.on_phase(Phase.SAVING)
    save_model(output_dir, student, tokenizer, manifest)
    checkpoints.discard()
    size = folder_size(output_dir)
    return TrainResult(
        output_dir=Path(output_dir),
        label_names=list(label_names),
        metrics=metrics,
        num_parameters=num_parameters,
        size_bytes=size,
        steps=fitted.steps,
        train_rows=len(splits["train"]),
        graphed_steps=fitted.graphed_steps,
        temperature=temperature or 1.0,
        test_rows=test_rows,
    )


def teacher_predictions(
    teacher: Any, loader: Any, device: torch.device, inputs_key: str, callback: Callback, config: DistillConfig
) -> list[int] | None:
    """The teacher's top class for each row of an evaluation loader, in its order (None for no rows)."""
    if not len(loader.dataset):
        return None
    logits, _ = split_logits(
        teacher, loader, device, inputs_key=inputs_key, should_stop=callback.should_stop, precision=config.precision
    )
    return logits.argmax(dim=-1).tolist()


def align_labels(dataset: TextDataset, label_names: list[str]) -> TextDataset:
    """The dataset with label ids renumbered to `label_names` (the teacher's), matched by name."""
    unknown = unknown_labels(dataset, label_names)
    if unknown:
        raise DataError(
            f"the dataset has labels the teacher was not trained on: {', '.join(map(repr, unknown))}; "
            f"the teacher's labels are: {', '.join(map(repr, label_names))}"
        )
    return relabel(dataset, label_names)


def same_tokenizer(a: PreTrainedTokenizerBase, b: PreTrainedTokenizerBase) -> bool:
    """Whether both produce the same ids (same vocabulary and pipeline); truncation/padding state aside."""
    if a is b:
        return True

    def pipeline(tok: PreTrainedTokenizerBase) -> dict[str, Any]:
        spec = json.loads(tok.backend_tokenizer.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        return spec

    return pipeline(a) == pipeline(b)
