"""The optimiser and the learning-rate schedule a config asks for.

AdamW either way. Weight decay, when on, skips biases and normalisation weights (as BERT's own recipe and HF's
Trainer do): decaying a LayerNorm's scale towards 0 only fights the normalisation.

Schedules:
  "exponential": the study's ExponentialLR, the rate multiplied by lr_gamma after every lr_step_every batches;
  "linear": a linear warm-up from 0 over warmup_ratio of all steps, then a linear decay to 0 at the last step,
    the schedule BERT was fine-tuned with (as transformers' get_linear_schedule_with_warmup).
"""

from __future__ import annotations

import torch
from torch import nn

from mlcore.config import TrainConfig
from mlcore.schedule import LinearWarmupDecay, warmup_steps


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters; the fused CUDA kernel on a GPU (one launch per step)."""
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if config.weight_decay > 0:
        no_decay = _no_decay_names(model)
        groups = [
            {"params": [p for n, p in params if n not in no_decay], "weight_decay": config.weight_decay},
            {"params": [p for n, p in params if n in no_decay], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": [p for _, p in params], "weight_decay": 0.0}]
    fused = True if device.type == "cuda" else None  # None: torch's default (foreach) elsewhere
    return torch.optim.AdamW(groups, lr=config.learning_rate, fused=fused)


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler, int]:
    """(scheduler, every): call scheduler.step() after every `every`-th optimiser step."""
    if config.scheduler == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma), config.lr_step_every
    warmup = warmup_steps(config, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LinearWarmupDecay(warmup, total_steps)), 1


def _no_decay_names(model: nn.Module) -> set[str]:
    """Biases, and every parameter of a normalisation layer (LayerNorm, RMSNorm, ... matched by class name)."""
    names = set()
    for module_name, module in model.named_modules():
        is_norm = isinstance(module, nn.LayerNorm) or "norm" in type(module).__name__.lower()
        for param_name, _ in module.named_parameters(recurse=False):
            if is_norm or param_name == "bias":
                names.add(f"{module_name}.{param_name}" if module_name else param_name)
    return names
