"""CUDA graphs for training steps: a repeated batch shape's forward and backward passes replayed, not relaunched.

At batch 64 a MiniLM-sized training step on an H100 is bound by kernel launches, not arithmetic: the CPU issues
some 500 kernels one by one, and a step took about 20 ms in fp32, TF32 and bf16 alike (bench/gpu_probe.py), while
four times the rows took only 1.1x as long. A CUDA graph records a shape's kernels once and replays them all
with one launch. torch.cuda.make_graphed_callables does the recording (three warm-up passes on a side stream,
then one forward and one backward graph) and returns a drop-in autograd function: the optimiser, the loss and
the metrics around it stay as they are.

A graph holds fixed shapes and replays without looking at data, so only calls it can stand for take it: a
training-mode call with input_ids alone (mlcore.batching leaves the attention mask out of a batch without
padding, which at max_length 128 is nearly every IMDB batch), asking for no other outputs, of a (batch, length)
shape that has come `after` times; at most `limit` shapes are recorded. Every other call, and every call after
a recording failed, runs the model as usual.

Memory: a graph keeps the blocks it recorded with. All of one model's graphs record into one pool, so together
they hold about one step's activations (plus each graph's own gradient buffers), not one set per shape. That is
safe because a step replays its graph's forward and backward passes before any other graph runs, and what a
graph leaves for later (its outputs and gradients) stays allocated, so no other graph records over it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = ["GraphedModel"]

log = logging.getLogger(__name__)


class GraphedModel:
    """Calls `model` as model(**inputs, **options) would, running training calls from CUDA graphs where it can.

    replays counts the calls served by a graph; error holds why recording failed (None if it never did).
    """

    def __init__(self, model: nn.Module, *, after: int = 3, limit: int = 4) -> None:
        self.model = model
        self.after = after
        self.limit = limit
        self.graphs: dict[tuple[int, ...], Callable[[Tensor], Tensor]] = {}
        self.seen: Counter[tuple[int, ...]] = Counter()
        self.replays = 0
        self.error: str | None = None
        self.pool: Any = None  # the memory pool every graph of this model records into

    def __call__(
        self, input_ids: Tensor | None = None, output_hidden_states: bool = False, **options: Any
    ) -> Any:
        graphed = None
        if input_ids is not None and not (options or output_hidden_states) and self.model.training:
            graphed = self._graph_for(input_ids)
        if graphed is None:
            return self.model(input_ids=input_ids, output_hidden_states=output_hidden_states, **options)
        self.replays += 1
        return SequenceClassifierOutput(logits=graphed(input_ids))

    def _graph_for(self, input_ids: Tensor) -> Callable[[Tensor], Tensor] | None:
        shape = tuple(input_ids.shape)
        if shape in self.graphs:
            return self.graphs[shape]
        self.seen[shape] += 1
        if self.error is not None or self.seen[shape] < self.after or len(self.graphs) >= self.limit:
            return None
        try:
            if self.pool is None:
                self.pool = torch.cuda.graph_pool_handle()
            # A copy: the sample becomes the graph's input buffer, which every replay overwrites.
            graphed = torch.cuda.make_graphed_callables(
                _Logits(self.model), (input_ids.clone(),), allow_unused_input=True, pool=self.pool
            )
        except Exception as exc:  # noqa: BLE001 - whatever stopped the recording, training goes on without graphs
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("recording a CUDA graph for batch shape %s failed; training goes on without: %s", shape, exc)
            return None
        self.graphs[shape] = graphed
        return graphed


class _Logits(nn.Module):
    """model(input_ids).logits as a module: make_graphed_callables needs tensors in and out, and takes the
    parameters it records gradients for from the module it is given."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.model(input_ids=input_ids).logits
