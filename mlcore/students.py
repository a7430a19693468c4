"""Smaller students made from a teacher by keeping some of its encoder layers (DistilBERT's initialisation)."""

from __future__ import annotations

import copy

from torch import nn
from transformers import PreTrainedModel


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
