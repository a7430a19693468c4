"""Training efficiency for bench-train: model FLOPs per run, the machine's peak, and where a step's time goes.

FLOPs are counted from the shapes each run really trained on (batch rows x padded length), with the analytic
count of a BERT-style encoder's matrix multiplications (`forward_flops`; tests/test_bench_train.py checks it
against torch's FlopCounterMode) at each forward pass's real input shape: a training pass counts 3x (backward
twice the forward), a pass in eval mode (a distillation teacher's) once. The peak is a dense matmul timed in the
same run with the same threads, in fp32 and bf16: the best this machine sustains on the operation models spend
their time in.

`StepProfile` splits a run's training steps without touching its code: global module hooks time the top-level
model's forward passes (a PreTrainedModel called from outside any other), global optimizer hooks time
`optimizer.step()`, and the gap from a training forward's end to the next optimizer step is its loss and
backward pass. What is left of the training window (first training forward to last optimizer step) is outside
the model: data loading and collation, host syncs (`.item()`, `.tolist()`), metrics, callbacks. On a CPU every
operation is synchronous, so wall-clock intervals are the operations' own time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from transformers import PreTrainedModel

PEAK_SIZE = 2048  # square matmul for the peak
PEAK_SECONDS = 2.0  # timed per dtype, after a warm-up


def forward_flops(config: Any, rows: int, length: int) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass of a BERT-style sequence classifier on rows x length
    tokens: per layer Q, K, V and output projections (4 H^2 per token), the feed-forward (2 H I per token), the
    attention scores and their weighted sum (2 L H per token, over every head), then the pooler and classifier on
    the first token. Embedding lookups, norms, softmax and activations are not matmuls and are left out."""
    h, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    labels = getattr(config, "num_labels", 2)
    per_token_per_layer = 4 * h * h + 2 * h * inner + 2 * length * h
    macs = rows * (layers * length * per_token_per_layer + h * h + h * labels)
    return 2 * macs


def matmul_peak(device: torch.device, threads: int) -> dict[str, float]:
    """GFLOP/s of a PEAK_SIZE-square matmul in fp32 and bf16 on `device` (a CPU on `threads` threads), the best
    of its timed calls."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    cuda = device.type == "cuda"
    out: dict[str, float] = {}
    try:
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            a = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device).to(dtype)
            b = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device).to(dtype)
            calls = 20 if cuda else 1  # a GPU call is too short to time alone
            for _ in range(3):
                a @ b
            best, deadline = float("inf"), time.perf_counter() + PEAK_SECONDS
            while time.perf_counter() < deadline:
                if cuda:
                    torch.cuda.synchronize(device)
                started = time.perf_counter()
                for _ in range(calls):
                    a @ b
                if cuda:
                    torch.cuda.synchronize(device)
                best = min(best, (time.perf_counter() - started) / calls)
            out[name] = 2 * PEAK_SIZE**3 / best / 1e9
    finally:
        torch.set_num_threads(previous)
    return out


@dataclass
class StepProfile:
    """A run's training steps, split into model (forward, loss, backward), optimizer and the rest, with the
    FLOPs of the forward passes they ran (from each pass's real input shape)."""

    forward: float = 0.0
    backward: float = 0.0
    optimizer: float = 0.0
    flops: int = 0  # within the window: training forwards x3, other forwards (a teacher's) x1
    steps: int = 0
    first: float | None = None  # start of the first training forward
    last: float | None = None  # end of the last optimizer step
    before_seconds: float = 0.0  # forward passes before the first training forward (a teacher-logits pass)
    before_flops: int = 0
    shapes: dict[str, int] = field(default_factory=dict)  # "rows x length" of the training forwards: count
    _top: Any = None  # the top-level model of the forward pass under way
    _embeddings: Any = None
    _started: float = 0.0
    _pending_forward: float = 0.0
    _pending_flops: int = 0
    _train_forward_end: float | None = None
    _step_started: float = 0.0
    _handles: list[Any] = field(default_factory=list)

    @contextlib.contextmanager
    def recording(self) -> Iterator[StepProfile]:
        self._handles = [
            register_module_forward_pre_hook(self._pre_forward),
            register_module_forward_hook(self._post_forward),
            register_optimizer_step_pre_hook(self._pre_step),
            register_optimizer_step_post_hook(self._post_step),
        ]
        try:
            yield self
        finally:
            for handle in self._handles:
                handle.remove()
            self._handles = []

    def _pre_forward(self, module: torch.nn.Module, args: Any) -> None:
        if self._top is None and isinstance(module, PreTrainedModel):
            self._top, self._embeddings = module, module.get_input_embeddings()
            self._started = time.perf_counter()
            if module.training and self.first is None:
                self.first = self._started
        elif module is self._embeddings and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 2:
            rows, length = args[0].shape
            top = self._top
            flops = forward_flops(top.config, rows, length) * (3 if top.training else 1)
            if self.first is None:
                self.before_flops += flops
            else:
                self._pending_flops += flops
            if top.training:
                key = f"{rows}x{length}"
                self.shapes[key] = self.shapes.get(key, 0) + 1

    def _post_forward(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if module is self._top:
            now = time.perf_counter()
            if self.first is None:
                self.before_seconds += now - self._started
            else:
                self._pending_forward += now - self._started
            if module.training:
                self._train_forward_end = now
            self._top = self._embeddings = None

    def _pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._step_started = time.perf_counter()
        if self._train_forward_end is not None:
            self.backward += self._step_started - self._train_forward_end
            self._train_forward_end = None

    def _post_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """A step ends: what ran since the last one joins the window (passes after the last step never do)."""
        now = time.perf_counter()
        self.optimizer += now - self._step_started
        self.forward += self._pending_forward
        self.flops += self._pending_flops
        self._pending_forward, self._pending_flops = 0.0, 0
        self.steps += 1
        self.last = now

    def summary(self, peak_gflops: float | None = None) -> dict[str, Any]:
        """Seconds, shares and FLOP/s of the training window (with `peak_gflops`, the share of that peak)."""
        if self.first is None or self.last is None or self.steps == 0:
            return {"steps_profiled": 0}
        window = self.last - self.first
        model = self.forward + self.backward
        other = max(window - model - self.optimizer, 0.0)
        gflops = self.flops / window / 1e9
        return {
            "steps_profiled": self.steps,
            "window_seconds": window,
            "model_seconds": model,
            "forward_seconds": self.forward,
            "backward_seconds": self.backward,
            "optimizer_seconds": self.optimizer,
            "model_share": model / window,
            "optimizer_share": self.optimizer / window,
            "other_share": other / window,
            # Everything in the steps that is not the model's forward and backward passes.
            "outside_model_share": (window - model) / window,
            "train_flops": self.flops,
            "train_gflops_per_s": gflops,
            "peak_gflops_per_s": peak_gflops,
            "share_of_peak": gflops / peak_gflops if peak_gflops else None,
            "before_training_seconds": self.before_seconds,
            "before_training_flops": self.before_flops,
            "train_shapes": dict(sorted(self.shapes.items(), key=lambda kv: -kv[1])),
            "train_tokens": sum(int(k.split("x")[0]) * int(k.split("x")[1]) * n for k, n in self.shapes.items()),
        }
