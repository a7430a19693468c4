"""The teacher fine-tuned with transformers' Trainer: what a user would reach for instead of Distillery's engine.

Same base model, train rows, seed, batch size, learning rate, epochs and max_length as the other runs; the
Trainer's length-grouped sampler on (train_sampling_strategy "group_by_length", transformers 5's name for
group_by_length) and its defaults otherwise: fused AdamW without weight decay, a linear decay to zero without
warm-up, fp32 on CPU (bf16 is off unless asked), dynamic padding by DataCollatorWithPadding. No evaluation or
saving during training. Rows are tokenised once before training (truncated to max_length, not padded), as a
datasets .map would. Validation and test accuracy are scored by the same fp32 code as the study's loop
(bench.baseline), and the model is saved the same way, so the bench measures its CPU inference like the others.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from bench.baseline import OnStep, StudyConfig, accuracy, params, save
from mlcore.data import TextDataset


class _Clock(TrainerCallback):
    """Training time from the first step's start to the last step's end, and progress lines."""

    def __init__(self, on_step: OnStep | None) -> None:
        self.on_step = on_step
        self.begin: float | None = None
        self.end = 0.0
        self.losses: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        if self.begin is None:
            self.begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        self.end = time.perf_counter()
        if self.on_step is not None:
            self.on_step(state.global_step, state.max_steps, None, None)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))

    @property
    def seconds(self) -> float:
        return self.end - (self.begin or self.end)


def finetune_trainer(
    train: TextDataset, valid: TextDataset, test: TextDataset, base_model: str, output_dir: Path,
    config: StudyConfig, on_step: OnStep | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune base_model with Trainer on `train`; save it to output_dir; return its figures."""
    started = time.perf_counter()
    names = train.label_names
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    torch.manual_seed(config.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)}, ignore_mismatched_sizes=True, dtype=torch.float32,
    )  # fmt: skip
    encoded = tokenizer(train.texts, truncation=True, max_length=config.max_length)
    rows = [
        {"input_ids": ids, "attention_mask": mask, "labels": label}
        for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], train.labels, strict=True)
    ]
    clock = _Clock(on_step)
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as scratch:
        arguments = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            num_train_epochs=config.epochs,
            seed=config.seed,
            train_sampling_strategy="group_by_length",
            use_cpu=config.device == "cpu",
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="epoch",
            report_to="none",
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model, args=arguments, train_dataset=rows, processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer), callbacks=[clock],
        )  # fmt: skip
        setup = time.perf_counter() - started
        output = trainer.train()
    model = trainer.model.to(config.device)
    steps = output.global_step
    figures: dict[str, Any] = {
        "avg_train_loss": output.training_loss,
        "avg_train_accuracy": None,  # the Trainer does not compute it
        "valid_accuracy": accuracy(model, tokenizer, valid, config),
        "test_accuracy": accuracy(model, tokenizer, test, config),
        "train_seconds": clock.seconds,
        "steps": steps,
        "epochs": config.epochs,
        "train_rows": len(train),
        "setup_seconds": setup,
        "params": params(model),
        "trainer_settings": {
            "optim": str(arguments.optim), "lr_scheduler_type": str(arguments.lr_scheduler_type),
            "weight_decay": arguments.weight_decay, "bf16": arguments.bf16,
            "train_sampling_strategy": arguments.train_sampling_strategy,
        },  # fmt: skip
    }
    save(output_dir, model, tokenizer, "finetune", base_model, config, figures, names, "transformers Trainer")
    return figures
