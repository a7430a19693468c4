"""Smaller students made from a teacher by keeping some of its encoder layers (DistilBERT's initialisation)."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import torch
import transformers
from torch import nn
from transformers import PreTrainedModel


def layers_to_keep(num_layers: int, count: int | None = None) -> list[int]:
    """Which of a teacher's num_layers encoder layers a derived student keeps.

    None, or a count equal to every-other's: every other layer from the first (0, 2, 4, ...), as DistilBERT was
    initialised from BERT. Any other count: that many evenly spaced layers, the first and the last included,
    round(i * (n - 1) / (count - 1)) with halves rounded up (12 -> 4 keeps 0, 4, 7, 11); 1 keeps layer 0.
    The first layer stays because it reads the embeddings the student copies too; the last because the pooler
    and the head were trained on its output.
    """
    every_other = list(range(0, num_layers, 2))
    if count is None or count == len(every_other):
        return every_other
    if not 1 <= count <= num_layers:
        raise ValueError(f"a derived student can keep 1 to {num_layers} of the teacher's layers, not {count}")
    if count == 1:
        return [0]
    return [math.floor(i * (num_layers - 1) / (count - 1) + 0.5) for i in range(count)]


def derive_student(teacher: PreTrainedModel, keep_layers: list[int] | None = None) -> PreTrainedModel:
    """A new model: a copy of `teacher` with only the encoder layers in keep_layers (default 0, 2, 4, ...).

    Embeddings, pooler and classification head are copied unchanged, so the student starts where the teacher
    is and distillation only has to make up for the missing layers. The teacher is not modified.
    """
    n = teacher.config.num_hidden_layers
    if n < 2:
        raise ValueError(f"the teacher has {n} layer(s); a derived student needs a teacher with at least 2")
    keep = list(range(0, n, 2)) if keep_layers is None else list(keep_layers)
    if not keep or keep != sorted(set(keep)) or keep[0] < 0 or keep[-1] >= n:
        raise ValueError(f"keep_layers must be increasing, unique layer indices in 0..{n - 1}, got {keep_layers}")

    student = copy.deepcopy(teacher)
    parent, attr, layers = _find_layers(student, n)
    kept = nn.ModuleList(layers[i] for i in keep)
    for new_index, layer in enumerate(kept):
        # Attention modules remember their position for KV caching; keep it consistent with the new stack.
        for module in layer.modules():
            if getattr(module, "layer_idx", None) is not None:
                module.layer_idx = new_index
    setattr(parent, attr, kept)
    student.config.num_hidden_layers = len(keep)
    student.requires_grad_(True)
    student.train()
    return student


def _find_layers(model: nn.Module, n: int) -> tuple[nn.Module, str, nn.ModuleList]:
    """The ModuleList holding the n encoder layers (bert.encoder.layer, distilbert.transformer.layer, ...)."""
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) == n and name.rsplit(".", 1)[-1] in {"layer", "layers"}
    ]
    if len(found) != 1:
        raise ValueError(f"could not find the encoder layers of {type(model).__name__}: {[name for name, _ in found]}")
    name, layers = found[0]
    parent_name, _, attr = name.rpartition(".")
    return model.get_submodule(parent_name), attr, layers


@dataclasses.dataclass(frozen=True)
class StudentEstimate:
    """What a derived student will be, worked out from its teacher's config.json alone (no weights are read)."""

    teacher_layers: int
    teacher_parameters: int
    kept: list[int]  # the teacher's layers the student keeps, as layers_to_keep() picks them
    hidden_size: int
    parameters: int
    fp32_bytes: int  # its weights on disk at fp32 (safetensors, and about the ONNX export's size)
    int8_bytes: int  # its ONNX export after dynamic int8 quantisation, the file it is served from

    @property
    def layers(self) -> int:
        return len(self.kept)


def estimate_student(config: dict[str, Any], count: int | None = None) -> StudentEstimate:
    """The student that distillation derives from a teacher whose config.json holds `config`, keeping `count`
    layers (None: every other), measured on a weightless copy of the teacher built on the meta device, so that it
    holds for any architecture derive_student() takes and costs a few milliseconds.

    Sizes: fp32 is 4 bytes a parameter. int8 is what ONNX Runtime's dynamic quantisation keeps (mlcore.onnxrt):
    the weight matrices of linear layers and the embedding tables at 1 byte an element plus a 4-byte scale and a
    1-byte zero point per output channel (per row of a table), every other tensor (biases, LayerNorm) at 4 bytes.
    """
    settings = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        teacher = transformers.AutoModelForSequenceClassification.from_config(settings)
    n = settings.num_hidden_layers
    keep = layers_to_keep(n, count)
    _, _, layers = _find_layers(teacher, n)
    dropped = {id(p) for i, layer in enumerate(layers) if i not in keep for p in layer.parameters()}
    quantised = {id(m.weight) for m in teacher.modules() if isinstance(m, nn.Linear | nn.Embedding)}
    parameters = fp32 = int8 = 0
    for p in teacher.parameters():
        if id(p) in dropped:
            continue
        parameters += p.numel()
        fp32 += 4 * p.numel()
        int8 += p.numel() + 5 * p.shape[0] if id(p) in quantised else 4 * p.numel()
    return StudentEstimate(
        teacher_layers=n, teacher_parameters=sum(p.numel() for p in teacher.parameters()), kept=keep,
        hidden_size=settings.hidden_size, parameters=parameters, fp32_bytes=fp32, int8_bytes=int8,
    )  # fmt: skip
