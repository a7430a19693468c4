"""Smaller students made from a teacher by keeping some of its encoder layers (DistilBERT's initialisation)."""

from __future__ import annotations

import copy
import math

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
