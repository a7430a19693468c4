"""Distillation: a trained teacher's soft predictions plus the labels train a smaller student."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from mlcore.artifacts import save_model
from mlcore.batching import Batch, split_loaders
from mlcore.callbacks import Callback
from mlcore.config import DistillConfig
from mlcore.data import DataError, TextDataset
from mlcore.devices import resolve_device, use_all_cpu_threads
from mlcore.evaluate import score_split
from mlcore.loading import check_max_length, load_for_training, load_trained
from mlcore.loop import fit
from mlcore.students import derive_student
from mlcore.train import TrainResult, evaluate_test_split, loader_options, make_splits


def distillation_loss(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *, alpha: float, temperature: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(total, soft, hard): total = alpha * soft + (1 - alpha) * hard.

    soft is KL(teacher || student) between the softmaxes at `temperature`, scaled by T^2 so that its gradients
    keep the same size whatever T is (Hinton et al. 2015); hard is cross-entropy against the labels.
    """
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=-1), F.softmax(teacher_logits / t, dim=-1), reduction="batchmean"
    )
    soft = soft * t * t
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1 - alpha) * hard, soft, hard


def distill(
    dataset: TextDataset,
    teacher_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    config: DistillConfig,
    callback: Callback | None = None,
) -> TrainResult:
    """Distil the model saved in teacher_dir into a student and save the student to output_dir.

    The student is the teacher with every other layer kept (config.student None), or a catalogue/hub/folder
    model with a new head. With the teacher's dataset and seed, the splits are the teacher's own, so neither
    model has seen the test rows. Raises DataError when the dataset has labels the teacher does not know.
    """
    callback = callback or Callback()
    device = resolve_device(config.device)
    use_all_cpu_threads(device)

    # Teacher: its label names fix the label ids; the dataset is mapped onto them by name.
    teacher, teacher_tokenizer, label_names, _ = load_trained(teacher_dir)
    dataset = align_labels(dataset, label_names)

    # Data: the same split as fine-tuning.
    splits = make_splits(dataset, config)

    # Student: seeded first, because a new classification head is drawn from torch's RNG.
    torch.manual_seed(config.seed)
    if config.student is None:
        student, tokenizer = derive_student(teacher), teacher_tokenizer
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
    loaders = split_loaders(splits, tokenizers, **loader_options(config, device))

    def step(model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        # The teacher runs once per batch, under the loop's autocast like the student. no_grad rather than
        # inference_mode: inference tensors cannot be saved for the KL's backward pass.
        with torch.no_grad():
            teacher_logits = teacher(**batch[teacher_key]).logits.float()
        logits = model(**batch["inputs"]).logits
        total, soft, hard = distillation_loss(
            logits.float(), teacher_logits, batch["labels"], alpha=config.alpha, temperature=config.temperature
        )
        return total, logits, {"train/soft_loss": soft, "train/hard_loss": hard}

    num_parameters = sum(p.numel() for p in student.parameters())
    callback.on_train_begin(
        {
            "total_steps": config.epochs * len(loaders["train"]),
            "train_rows": len(splits["train"]),
            "valid_rows": len(splits["valid"]),
            "test_rows": len(splits["test"]),
            "label_names": list(label_names),
            "device": str(device),
            "num_parameters": num_parameters,
            "teacher_num_parameters": sum(p.numel() for p in teacher.parameters()),
        }
    )

    # Loop: the fine-tuning loop with the distillation loss.
    fitted = fit(student, step, loaders["train"], loaders["valid"], config, device, callback)
    metrics: dict[str, Any] = {"train/avg_loss": fitted.avg_loss, "train/avg_accuracy": fitted.avg_accuracy}
    metrics |= fitted.val_metrics

    # Evaluation: student and teacher on the same test rows.
    metrics |= evaluate_test_split(student, loaders["test"], label_names, device, callback, fitted.steps, config)
    if "test/accuracy" in metrics:
        teacher_scores = score_split(
            teacher, loaders["test"], label_names, device,
            prefix="teacher/test", inputs_key=teacher_key, should_stop=callback.should_stop,
            precision=config.precision,
        )  # fmt: skip
        metrics["teacher/test/accuracy"] = teacher_scores["teacher/test/accuracy"]
        metrics["teacher/test/macro_f1"] = teacher_scores["teacher/test/macro_f1"]
        if teacher_scores["teacher/test/accuracy"] > 0:
            metrics["student/accuracy_retained"] = metrics["test/accuracy"] / teacher_scores["teacher/test/accuracy"]

    # Save: the student with its tokenizer; distillery.json records the teacher.
    manifest = {
        "kind": "distill",
        "teacher": str(teacher_dir),
        "base_model": config.student if config.student is not None else str(teacher_dir),
        "student": config.student if config.student is not None else "derived: every other teacher layer",
        "label_names": list(label_names),
        "max_length": config.max_length,
        "config": asdict(config),
        "steps": fitted.steps,
        "metrics": metrics,
    }
    size = save_model(output_dir, student, tokenizer, manifest)
    return TrainResult(
        output_dir=Path(output_dir),
        label_names=list(label_names),
        metrics=metrics,
        num_parameters=num_parameters,
        size_bytes=size,
        steps=fitted.steps,
        train_rows=len(splits["train"]),
    )


def align_labels(dataset: TextDataset, label_names: list[str]) -> TextDataset:
    """The dataset with label ids renumbered to `label_names` (the teacher's), matched by name."""
    unknown = [name for name in dataset.label_names if name not in label_names]
    if unknown:
        raise DataError(
            f"the dataset has labels the teacher was not trained on: {', '.join(map(repr, unknown))}; "
            f"the teacher's labels are: {', '.join(map(repr, label_names))}"
        )
    index = {name: i for i, name in enumerate(label_names)}
    renumber = [index[name] for name in dataset.label_names]
    return TextDataset(list(dataset.texts), [renumber[y] for y in dataset.labels], list(label_names))


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
