"""The study's training loop, written plainly: the baseline the engine is measured against.

What the study's notebook did, and nothing more: every batch is tokenised when it is drawn and padded to
max_length, AdamW at a fixed learning rate decayed by ExponentialLR every `lr_step_every` batches, fp32, loss
and accuracy read back with .item() after every batch, a plain shuffled DataLoader. The student keeps every
other teacher layer and learns from 0.5 * KL(teacher softmax || student softmax) + 0.5 * cross-entropy at T=1.
Both models are saved like mlcore saves them, so the same inference code measures all four models.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mlcore.artifacts import save_model
from mlcore.data import TextDataset
from mlcore.students import derive_student

# step, total_steps, batch loss, batch accuracy
OnStep = Callable[[int, int, float, float], None]


@dataclass
class StudyConfig:
    max_length: int = 128
    batch_size: int = 64
    learning_rate: float = 2e-5
    weight_decay: float = 0.01  # torch AdamW's default, on every parameter: what AdamW(model.parameters()) does
    lr_gamma: float = 0.96
    lr_step_every: int = 10
    epochs: int = 1
    seed: int = 42
    alpha: float = 0.5  # distillation: weight of the KL term
    temperature: float = 1.0
    device: str = "cpu"


def finetune_baseline(
    train: TextDataset, valid: TextDataset, test: TextDataset, base_model: str, output_dir: Path,
    config: StudyConfig, on_step: OnStep | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune base_model (a folder) the study's way; save it to output_dir; return its figures."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)  # the new classification head is drawn from torch's RNG
    names = train.label_names
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)}, ignore_mismatched_sizes=True, dtype=torch.float32,
    )  # fmt: skip
    model.to(config.device)

    def step_loss(batch: dict[str, torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(**batch).logits
        return F.cross_entropy(logits, labels), logits

    setup = time.perf_counter() - started
    figures = _fit(model, tokenizer, step_loss, train, valid, config, on_step)
    figures["test_accuracy"] = accuracy(model, tokenizer, test, config)
    figures |= {"setup_seconds": setup, "params": params(model)}
    save(output_dir, model, tokenizer, "finetune", base_model, config, figures, names)
    return figures


def distill_baseline(
    train: TextDataset, valid: TextDataset, test: TextDataset, teacher_dir: Path, output_dir: Path,
    config: StudyConfig, on_step: OnStep | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Distil the teacher saved in teacher_dir into its every-other-layer student the study's way."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir, dtype=torch.float32)
    student = derive_student(teacher)
    teacher.to(config.device).eval()
    student.to(config.device)
    t = config.temperature

    def step_loss(batch: dict[str, torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            teacher_logits = teacher(**batch).logits
        logits = student(**batch).logits
        soft = F.kl_div(F.log_softmax(logits / t, dim=-1), F.softmax(teacher_logits / t, dim=-1), reduction="batchmean")
        hard = F.cross_entropy(logits, labels)
        return config.alpha * soft * t * t + (1 - config.alpha) * hard, logits

    setup = time.perf_counter() - started
    figures = _fit(student, tokenizer, step_loss, train, valid, config, on_step)
    figures["test_accuracy"] = accuracy(student, tokenizer, test, config)
    figures |= {"setup_seconds": setup, "params": params(student)}
    save(output_dir, student, tokenizer, "distill", str(teacher_dir), config, figures, train.label_names)
    return figures


def _fit(model, tokenizer, step_loss, train, valid, config, on_step) -> dict[str, Any]:  # noqa: ANN001
    loader = DataLoader(
        list(zip(train.texts, train.labels, strict=True)), batch_size=config.batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(config.seed), collate_fn=lambda rows: tuple(zip(*rows, strict=True)),
    )  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)
    total_steps = config.epochs * len(loader)
    losses: list[float] = []
    accuracies: list[float] = []
    train_seconds, valid_accuracy, step = 0.0, None, 0
    for _ in range(config.epochs):
        model.train()
        epoch_start = time.perf_counter()
        for texts, labels in loader:
            batch = _tokenize(tokenizer, list(texts), config)
            labels = torch.tensor(labels, device=config.device)
            loss, logits = step_loss(batch, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % config.lr_step_every == 0:
                scheduler.step()
            losses.append(loss.item())
            accuracies.append((logits.argmax(dim=-1) == labels).float().mean().item())
            if on_step is not None:
                on_step(step, total_steps, losses[-1], accuracies[-1])
        train_seconds += time.perf_counter() - epoch_start  # validation below is not training time
        valid_accuracy = accuracy(model, tokenizer, valid, config) if len(valid) else None
    return {
        "avg_train_loss": sum(losses) / len(losses),
        "avg_train_accuracy": sum(accuracies) / len(accuracies),
        "valid_accuracy": valid_accuracy,
        "train_seconds": train_seconds,
        "steps": step,
        "epochs": config.epochs,
        "train_rows": len(train),
    }


def _tokenize(tokenizer, texts: list[str], config: StudyConfig) -> dict[str, torch.Tensor]:  # noqa: ANN001
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=config.max_length, return_tensors="pt")
    return {k: v.to(config.device) for k, v in enc.items()}


@torch.no_grad()
def accuracy(model, tokenizer, data: TextDataset, config: StudyConfig) -> float | None:  # noqa: ANN001
    if not len(data):
        return None
    model.eval()
    correct = 0
    for start in range(0, len(data), config.batch_size):
        batch = _tokenize(tokenizer, data.texts[start : start + config.batch_size], config)
        labels = torch.tensor(data.labels[start : start + config.batch_size], device=config.device)
        correct += (model(**batch).logits.argmax(dim=-1) == labels).sum().item()
    model.train()
    return correct / len(data)


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save(output_dir, model, tokenizer, kind, base, config, figures, label_names, by="the study's loop") -> None:  # noqa: ANN001
    manifest = {
        "kind": kind,
        "base_model": base,
        "label_names": list(label_names),
        "max_length": config.max_length,
        "truncation": "head",
        "config": asdict(config),
        "steps": figures["steps"],
        "metrics": {
            "train/avg_loss": figures["avg_train_loss"],
            "train/avg_accuracy": figures["avg_train_accuracy"],
            "val/accuracy": figures["valid_accuracy"],
            "test/accuracy": figures["test_accuracy"],
        },
        "note": f"trained by the training benchmark ({by})",
    }
    save_model(output_dir, model.cpu(), tokenizer, manifest)
    model.to(config.device)
