"""Hyperparameters for fine-tuning and distillation, validated on construction.

The defaults are the study's: max_length 128 with head truncation, batch 64, lr 2e-5 with no weight decay,
ExponentialLR(0.96) stepped every 10 batches, 1 epoch; distillation alpha 0.5 at temperature 1 into the teacher
with every other layer kept, without a hidden-state loss. The options that beat the study on IMDB (head_tail
truncation, the linear schedule with warm-up, a hidden-state loss, ...) are opt-in, so a job that names none of
them trains the way the study did. The speed settings are on by default: group_by_length "auto" changes which
rows share a batch (not the rows seen per epoch) where that saves real work, precision
"auto" is bf16 autocast where the hardware has native bf16 (a CUDA GPU, or a CPU with AVX-512 BF16 or AMX) and
fp32 elsewhere, and cuda_graphs acts on a CUDA GPU only.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar


class ConfigError(ValueError):
    """A hyperparameter that is unknown, of the wrong type or out of range; the message names it."""


@dataclass(frozen=True)
class Range:
    """The values a numeric parameter may take: low to high, each end included unless it is open. high may be
    math.inf: no upper limit."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    note: str = ""  # added to a refusal after the bound, e.g. what an empty value means

    def contains(self, value: float) -> bool:
        # Written so that NaN fails every comparison and is refused. Only floats can be infinite, and
        # math.isfinite overflows on a huge int.
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below and not (isinstance(value, float) and not math.isfinite(value))

    def check(self, name: str, value: float) -> None:
        """Raise a ConfigError naming the parameter and the range when `value` is outside it."""
        if not self.contains(value):
            raise ConfigError(f"{self.requirement(name)}, got {value!r}")

    def requirement(self, name: str) -> str:
        """A refusal's words before the value, "max_length must be in [8, 512]" (the launch form's script ends
        them as check() does)."""
        return f"{name} must be {self._bound()}{self.note}"

    def describe(self) -> str:
        """The interval as it is written in messages and docs: [8, 512], (0, 1], [0, 0.5), [1, inf)."""
        closing = ")" if self.high_open or math.isinf(self.high) else "]"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{closing}"

    def _bound(self) -> str:
        if math.isinf(self.high):  # "in [1, inf)" reads worse than "at least 1"
            return f"{'above' if self.low_open else 'at least'} {self.low:g}"
        return f"in {self.describe()}"


def _meta(text: str, *, bounds: Range | None = None, choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    # A field's metadata: its help text, and the range or the choices its values keep to. The checks, the
    # dashboard's form and the docs all read them from here, so each is written once.
    meta: dict[str, Any] = {"help": text}
    if bounds is not None:
        meta["range"] = bounds
    if choices is not None:
        meta["choices"] = choices
    return meta


_SEEDS = Range(0, 2**32 - 1)  # seed and split_seed: an unsigned 32-bit integer
_NO_LIMIT = " (or empty for no limit)"


@dataclass
class TrainConfig:
    """Fine-tuning hyperparameters."""

    max_length: int = field(
        default=128, metadata=_meta("Tokens kept per text; longer texts are cut.", bounds=Range(8, 512))
    )  # tokens
    batch_size: int = field(
        default=64, metadata=_meta("Texts per optimiser step.", bounds=Range(1, 1024))
    )  # samples per step
    learning_rate: float = field(
        default=2e-5,
        metadata=_meta(
            "AdamW learning rate at the start (the peak after warm-up for 'linear').", bounds=Range(0, 1, low_open=True)
        ),
    )  # per step
    lr_gamma: float = field(
        default=0.96,
        metadata=_meta(
            "Scheduler 'exponential': the learning rate is multiplied by this.", bounds=Range(0, 1, low_open=True)
        ),
    )  # factor per scheduler step
    lr_step_every: int = field(
        default=10,
        metadata=_meta(
            "Scheduler 'exponential': batches between two multiplications by lr_gamma.", bounds=Range(1, 1_000_000)
        ),
    )  # batches
    epochs: int = field(default=1, metadata=_meta("Passes over the training rows.", bounds=Range(1, 100)))  # passes
    valid_fraction: float = field(
        default=0.1,
        metadata=_meta("Share of rows held out for validation after each epoch.", bounds=Range(0, 0.5, high_open=True)),
    )  # fraction of rows
    test_fraction: float = field(
        default=0.1, metadata=_meta("Share of rows held out for the final test.", bounds=Range(0, 0.5, high_open=True))
    )  # fraction
    max_train_samples: int | None = field(
        default=None,
        metadata=_meta("Use at most this many training rows (none: all).", bounds=Range(1, math.inf, note=_NO_LIMIT)),
    )  # rows
    max_eval_samples: int | None = field(
        default=None,
        metadata=_meta(
            "Use at most this many validation rows and as many test rows (none: all).",
            bounds=Range(1, math.inf, note=_NO_LIMIT),
        ),
    )  # rows, per split
    seed: int = field(
        default=42, metadata=_meta("Seed for the split, the shuffling and the new weights.", bounds=_SEEDS)
    )  # integer
    split_seed: int | None = field(
        default=None,
        metadata=_meta(
            "Seed for the train/valid/test split alone (empty: seed), so that runs with different seeds can be "
            "compared on the same rows.",
            bounds=_SEEDS,
        ),
    )  # integer
    device: str = field(
        default="auto", metadata=_meta("'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'.")
    )  # torch device name
    gpu_memory_gb: int = field(
        default=0,
        metadata=_meta(
            "GPU memory the job needs, in GB: only a worker whose NVIDIA GPU has at least this much takes it (rounded "
            "up to the next memory tier, up to 192); 0: any worker, a CPU one included.",
            bounds=Range(0, 192),
        ),
    )  # GB
    devices: int = field(
        default=1,
        metadata=_meta(
            "Devices one run trains on, data-parallel: on CUDA that many GPUs (from device's index on), on CPU that "
            "many processes sharing the cores; each optimiser step's batch_size rows are split across them, so the "
            "steps and the schedule stay those of one device.",
            bounds=Range(1, 8),
        ),
    )  # processes, one per device
    group_by_length: bool | str = field(
        default="auto",
        metadata=_meta(
            "Batch texts of similar token length together, so that batches carry little padding: true, false, or "
            "'auto': only when that cuts the padded tokens of an epoch by 10% or more (on IMDB 3% at 128 tokens, "
            "46% at 512), or, on a GPU with cuda_graphs, makes half the batches or more free of padding.",
            choices=("auto",),
        ),
    )  # on/off/auto
    precision: str = field(
        default="auto",
        metadata=_meta(
            "'auto' (bf16 autocast where the hardware multiplies bf16 natively: a CUDA GPU that supports it, "
            "or a CPU with AVX-512 BF16 or AMX; else fp32), 'fp32' or 'bf16'.",
            choices=("auto", "fp32", "bf16"),
        ),
    )  # autocast mode
    cuda_graphs: bool = field(
        default=True,
        metadata=_meta(
            "On a CUDA GPU, replay the training passes of batches without padding from CUDA graphs, one per "
            "repeated batch shape (a small model's step is bound by kernel launches); ignored on CPU."
        ),
    )  # on/off
    truncation: str = field(
        default="head",
        metadata=_meta(
            "How a text longer than max_length is cut: 'head' keeps its start (the study); 'head_tail' keeps the "
            "first quarter of max_length from its start and the rest from its end (Sun et al. 2019).",
            choices=("head", "head_tail"),
        ),
    )  # strategy name
    scheduler: str = field(
        default="exponential",
        metadata=_meta(
            "Learning-rate schedule: 'exponential' (times lr_gamma every lr_step_every batches, the study's) or "
            "'linear' (warm-up over warmup_ratio of the steps, then linear decay to 0).",
            choices=("exponential", "linear"),
        ),
    )  # schedule name
    warmup_ratio: float = field(
        default=0.0,
        metadata=_meta(
            "Share of all training steps spent warming up (scheduler 'linear' only).",
            bounds=Range(0, 1, high_open=True),
        ),
    )  # fraction of steps
    weight_decay: float = field(
        default=0.0,
        metadata=_meta("AdamW weight decay; biases and LayerNorm weights are never decayed.", bounds=Range(0, 1)),
    )  # per step, times lr
    keep_best_epoch: bool = field(
        default=False,
        metadata=_meta(
            "After training, go back to the weights of the epoch with the best validation accuracy (the test then "
            "runs on those); the last epoch's otherwise."
        ),
    )  # on/off
    early_stopping_patience: int | None = field(
        default=None,
        metadata=_meta(
            "Stop training once validation accuracy has not improved for this many epochs in a row; empty: train "
            "every epoch.",
            bounds=Range(1, 100),
        ),
    )  # epochs
    calibrate: bool = field(
        default=False,
        metadata=_meta(
            "After training, fit one temperature T on the validation rows (the one that minimises their negative "
            "log-likelihood) and serve softmax(logits / T), so that the probabilities say how often the model is "
            "right; the test reports the calibration error before and after. Needs validation rows."
        ),
    )  # on/off
    checkpoint_every: int = field(
        default=0,
        metadata=_meta(
            "Optimiser steps between two checkpoints, from which a stopped run resumes exactly; 0: no checkpoints.",
            bounds=Range(0, 1_000_000_000),
        ),
    )  # steps

    @property
    def gpus_needed(self) -> int:
        """The GPUs one worker must have to run this on CUDA: from the device's index (cuda:K) to its last rank's."""
        return int(self.device.partition(":")[2] or 0) + self.devices

    def __post_init__(self) -> None:
        _check_types(self)
        _check_fields(self)
        # The rules that involve more than one field, or more than a range or a list of choices:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.gpu_memory_gb > 0 and self.device == "cpu":
            raise ConfigError("gpu_memory_gb asks for a GPU: use device 'auto' or 'cuda' with it, or 0 on the CPU")
        if self.warmup_ratio > 0 and self.scheduler != "linear":
            raise ConfigError("warmup_ratio needs scheduler 'linear'; the 'exponential' schedule has no warm-up")
        if self.calibrate and self.valid_fraction == 0:
            raise ConfigError("calibrate fits its temperature on the validation rows: give valid_fraction above 0")


@dataclass
class DistillConfig(TrainConfig):
    """Distillation hyperparameters: the fine-tuning ones plus the loss mix and the student."""

    alpha: float = field(
        default=0.5,
        metadata=_meta("Weight of the soft (teacher) loss; 1 - alpha weighs the label loss.", bounds=Range(0, 1)),
    )  # weight, 0..1
    temperature: float = field(
        default=1.0,
        metadata=_meta(
            "Softmax temperature of the soft loss (scaled by T squared).", bounds=Range(0, 100, low_open=True)
        ),
    )  # unitless, > 0
    student: str | None = field(
        default=None,
        metadata=_meta("Student model id or folder; empty: derived from the teacher by keeping some of its layers."),
    )  # model id
    student_layers: int | None = field(
        default=None,
        metadata=_meta(
            "Layers of a derived student: empty keeps every other teacher layer (0, 2, 4, ...); k keeps k evenly "
            "spaced layers, the first and the last included.",
            bounds=Range(1, 1000),
        ),
    )  # encoder layers
    hidden_loss_weight: float = field(
        default=0.0,
        metadata=_meta(
            "Weight of a hidden-state loss (mean squared error between each derived-student layer and the teacher "
            "layer it was copied from); 0 turns it off.",
            bounds=Range(0, 1000),
        ),
    )  # weight, added to the loss

    def __post_init__(self) -> None:
        super().__post_init__()  # checks this class's fields' ranges too
        if self.student is not None and not self.student.strip():
            raise ConfigError("student must be a model id or folder, or empty to derive it from the teacher")
        if self.student is not None and (self.student_layers is not None or self.hidden_loss_weight > 0):
            # A catalogue student's layers were not copied from the teacher's, so there is nothing to pair them with.
            raise ConfigError(
                "student_layers and hidden_loss_weight apply to a derived student only; leave student empty"
            )


ConfigT = TypeVar("ConfigT", bound=TrainConfig)


def config_from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
    """Build a config from user-supplied parameters (a job's JSON), rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError("parameters must be a JSON object")
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown parameter {key!r}; known: {', '.join(known)}")
    return cls(**data)


def config_defaults(cls: type[TrainConfig]) -> dict[str, Any]:
    """Each parameter's default, in declaration order (for forms and the API)."""
    return {f.name: f.default for f in dataclasses.fields(cls)}


def config_help(cls: type[TrainConfig]) -> dict[str, str]:
    """Each parameter's help text, in declaration order (for forms and the API)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def field_range(cls: type[TrainConfig], name: str) -> Range | None:
    """The range a numeric parameter's values must lie in; None when it has none."""
    return _field(cls, name).metadata.get("range")


def field_choices(cls: type[TrainConfig], name: str) -> tuple[str, ...] | None:
    """The strings a parameter may be; None when it is not a choice among strings."""
    return _field(cls, name).metadata.get("choices")


def config_fields(cls: type[TrainConfig]) -> list[dict[str, Any]]:
    """Every parameter in declaration order: name, type ("int", "int | None", ...), default, help, range
    ({low, high, low_open, high_open}, high None for no upper limit, or None) and choices (a list, or None).
    Plain values only, so that it can be sent as JSON."""
    hints = typing.get_type_hints(cls)
    return [
        {
            "name": f.name,
            "type": " | ".join("None" if t is type(None) else t.__name__ for t in _allowed_types(hints[f.name])),
            "default": f.default,
            "help": f.metadata.get("help", ""),
            "range": _range_dict(f.metadata.get("range")),
            "choices": list(f.metadata["choices"]) if "choices" in f.metadata else None,
        }
        for f in dataclasses.fields(cls)
    ]


def parameters_markdown() -> str:
    """Every parameter as a Markdown table: the fine-tuning ones (which distillation shares), then the
    distillation-only ones, each with the job kinds that take it, its default, what it allows and what it does."""
    shared = {f.name for f in dataclasses.fields(TrainConfig)}
    hints = typing.get_type_hints(DistillConfig)
    lines = ["| parameter | jobs | default | allowed | what it does |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(DistillConfig):
        cells = [
            f"`{f.name}`",
            "finetune, distill" if f.name in shared else "distill",
            _markdown_value(f.default),
            _allowed_text(f, _allowed_types(hints[f.name])),
            f.metadata.get("help", ""),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _field(cls: type[TrainConfig], name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no parameter {name!r}")


def _range_dict(bounds: Range | None) -> dict[str, Any] | None:
    if bounds is None:
        return None
    high = None if math.isinf(bounds.high) else bounds.high  # JSON has no infinity
    return {"low": bounds.low, "high": high, "low_open": bounds.low_open, "high_open": bounds.high_open}


def _check_fields(config: TrainConfig) -> None:
    # Ranges and choices come from the field metadata, so a new field is checked without touching this function.
    # It runs after _check_types: each value is of its field's type, ints already turned to floats where needed.
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None:  # an optional parameter left empty
            continue
        if (bounds := f.metadata.get("range")) is not None:
            bounds.check(f.name, value)
        if (choices := f.metadata.get("choices")) is not None and isinstance(value, str):  # group_by_length: or bool
            _check_choice(f.name, value, choices)


def _markdown_value(value: Any) -> str:
    if value is None:
        return "empty"
    return f"`{str(value).lower() if isinstance(value, bool) else repr(value)}`"


def _allowed_text(f: dataclasses.Field, allowed: tuple[type, ...]) -> str:
    # What a value may be, in the words of the messages: true or false, an interval, the choices, empty.
    bounds, choices = f.metadata.get("range"), f.metadata.get("choices")
    parts = []
    for t in allowed:
        if t is bool:
            parts += ["`true`", "`false`"]
        elif t in (int, float):
            parts.append(bounds.describe() if bounds is not None else _TYPE_NAMES[t])
        elif t is str:
            parts += [f"`{c!r}`" for c in choices] if choices is not None else [_TYPE_NAMES[t]]
        else:
            parts.append("empty")
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"


def _check_types(config: TrainConfig) -> None:
    # Types come from the annotations, so a new field is checked without touching this function.
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        allowed = _allowed_types(hints[f.name])
        if value is None and type(None) in allowed:
            continue
        if isinstance(value, bool):  # bool is an int subclass, but True is never a sensible batch size
            if bool in allowed:
                continue
        elif float in allowed and isinstance(value, (int, float)):
            setattr(config, f.name, float(value))
            continue
        elif int in allowed and isinstance(value, int):
            continue
        elif str in allowed and isinstance(value, str):
            continue
        names = " or ".join("empty" if t is type(None) else _TYPE_NAMES[t] for t in allowed)
        raise ConfigError(f"{f.name} must be {names}, got {value!r}")


_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _allowed_types(hint: Any) -> tuple[type, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


if __name__ == "__main__":  # python -m mlcore.config: the parameter table, for the README
    print(parameters_markdown(), end="")
