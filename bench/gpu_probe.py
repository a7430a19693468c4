"""Where a training step's time goes on a GPU, for a MiniLM-sized BERT (random weights: nothing to carry).

    python -m bench.gpu_probe [--out FILE]

Times one optimiser step (forward, backward, fused AdamW, one host sync as the engine's loop does) at batch 64 and
128 tokens in fp32, TF32 and bf16 autocast; the cost of the first step at each new sequence length (what
dynamic padding pays while shapes are new), with and without cuDNN attention and in the engine's own forward
context (mlcore.devices.autocast, which leaves cuDNN attention out); forward-only time; the engine's own loop
(mlcore.loop.fit, batch 64, with and without CUDA graphs) beside the bare step, and the bare step with its loss
read one step late; and the distillation teacher pass at 4x the batch. The full benchmark showed the engine's
first minute on a GPU running at half its later speed; this says why.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, BertForSequenceClassification


def make_model(device: torch.device) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
        num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    return BertForSequenceClassification(config).to(device).train()


def batch(device: torch.device, size: int, length: int, padded_from: int | None = None) -> dict[str, torch.Tensor]:
    ids = torch.randint(1000, 30000, (size, length), device=device)
    mask = torch.ones(size, length, dtype=torch.long, device=device)
    if padded_from is not None:
        mask[size // 2 :, padded_from:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 2, (size,), device=device)}


def step_timer(model: torch.nn.Module, mode: str) -> Any:
    """mode: fp32 / tf32 (set by the caller), bf16 (torch.autocast), or bf16_mlcore (mlcore.devices.autocast, as
    the engine's loop runs its forward passes)."""
    from mlcore.devices import autocast

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    dtype = torch.bfloat16 if mode.startswith("bf16") else None

    def context(device: torch.device) -> Any:
        if mode == "bf16_mlcore":
            return autocast(device, dtype)
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def step(b: dict[str, torch.Tensor]) -> float:
        start = time.perf_counter()
        with context(b["input_ids"].device):
            loss = model(**b).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # the loop's one sync per batch
        return (time.perf_counter() - start) * 1000

    return step


def deferred_sync(model: torch.nn.Module, b: dict[str, torch.Tensor], n: int = 40) -> dict[str, float]:
    """bf16 steps as step_timer's, but the host reads each step's loss only after queueing the next step: what
    fetching a batch's metrics one step late would save. Median ms per step over n steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    previous: torch.Tensor | None = None
    times = []
    for _ in range(n + 5):
        start = time.perf_counter()
        with torch.autocast(b["input_ids"].device.type, dtype=torch.bfloat16):
            loss = model(**b).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if previous is not None:
            previous.item()
        previous = loss.detach()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times[5:]), "min_ms": min(times[5:])}


def steady(step: Any, b: dict[str, torch.Tensor], n: int = 40) -> dict[str, float]:
    times = [step(b) for _ in range(n + 5)][5:]
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def new_shapes(step: Any, device: torch.device, lengths: list[int]) -> list[dict[str, float]]:
    out = []
    for length in lengths:
        b = batch(device, 64, length, padded_from=length - 7)
        first = step(b)
        again = statistics.median(step(b) for _ in range(3))
        out.append({"length": length, "first_ms": first, "again_ms": again})
    return out


def random_rows(n: int, device: torch.device, seed: int) -> Any:
    """n rows of 128 random token ids (labels alternating) as the engine's training batches of 64."""
    from mlcore.batching import EncodedRows, TrainBatches

    ids = torch.randint(1000, 30000, (n, 128), generator=torch.Generator().manual_seed(seed)).tolist()
    rows = EncodedRows([i % 2 for i in range(n)], inputs=[{"input_ids": row} for row in ids])
    return TrainBatches(rows, {"inputs": 0}, 64, seed=0, group_by_length=True, pin_memory=device.type == "cuda")


def engine_loop(
    model: torch.nn.Module, device: torch.device, batches: int = 40, *, cuda_graphs: bool = True
) -> dict[str, float]:
    """mlcore.loop.fit over `batches` batches of 64 rows of 128 tokens (pinned on CUDA), as the engine trains:
    the median milliseconds between two on_batch_end calls, to set beside the bare step above. The rows have no
    padding, so with cuda_graphs the steps from the third on replay a CUDA graph (mlcore.graphs)."""
    from mlcore.batching import EncodedRows
    from mlcore.callbacks import Callback
    from mlcore.config import TrainConfig
    from mlcore.loop import classify_step, fit

    class Clock(Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_batch_end(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
            self.times.append(time.perf_counter())

    train = random_rows(64 * batches, device, seed=0)
    valid = torch.utils.data.DataLoader(EncodedRows([], inputs=[]), batch_size=64)
    clock = Clock()
    config = TrainConfig(epochs=1, batch_size=64, learning_rate=1e-5, device=str(device), cuda_graphs=cuda_graphs)
    fitted = fit(model, classify_step, train, valid, config, device, clock)
    gaps = [(b - a) * 1000 for a, b in zip(clock.times[5:], clock.times[6:], strict=False)]
    return {"median_ms": statistics.median(gaps), "min_ms": min(gaps), "graphed_steps": fitted.graphed_steps}


def teacher_pass(model: torch.nn.Module, device: torch.device, rows: int = 64 * 40) -> dict[str, float]:
    """Seconds for mlcore's teacher pass (logits of every row, 4x the batch) against a forward per batch of 64."""
    from mlcore.evaluate import logits_by_row

    train = random_rows(rows, device, seed=1)
    out = {}
    for name, batch in (("batch_256_s", 256), ("batch_64_s", 64), ("batch_256_again_s", 256)):
        start = time.perf_counter()
        logits_by_row(model, train.by_length(batch), rows, device, precision="auto").sum().item()
        out[name] = time.perf_counter() - start
    return out


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path)
    p.add_argument("--device", default="cuda", help="cuda (cpu only to try the script)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    result: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "sdp": {
            "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
            "flash": torch.backends.cuda.flash_sdp_enabled(),
            "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
        },
    }
    started = time.perf_counter()
    model = make_model(device)
    b128 = batch(device, 64, 128)
    first = step_timer(model, "bf16")
    result["first_step_ms"] = {"bf16": first(b128), "bf16_second": first(b128)}
    modes: dict[str, Any] = {}
    for mode in ("fp32", "tf32", "bf16"):
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
        torch.backends.cudnn.allow_tf32 = mode == "tf32"
        modes[mode] = steady(step_timer(model, mode), b128)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode == "bf16"):
            times = []
            for _ in range(25):
                start = time.perf_counter()
                model(**b128).logits.float().sum().item()
                times.append((time.perf_counter() - start) * 1000)
        modes[mode]["forward_median_ms"] = statistics.median(times[5:])
        modes[mode]["padded_batch"] = steady(step_timer(model, mode), batch(device, 64, 128, padded_from=100), 20)
    torch.backends.cuda.matmul.allow_tf32 = False
    result["step_b64_L128"] = modes
    result["step_b256_L128_bf16"] = steady(step_timer(model, "bf16"), batch(device, 256, 128), 20)
    result["step_b64_L128_bf16_deferred_sync"] = deferred_sync(model, b128)
    result["engine_fit_b64_L128"] = engine_loop(model, device)  # precision auto: bf16 on CUDA, CUDA graphs
    result["engine_fit_b64_L128_no_graphs"] = engine_loop(model, device, cuda_graphs=False)
    result["teacher_pass_2560_rows_L128"] = teacher_pass(model, device)

    # The engine's own context first, while the process still allows cuDNN attention.
    result["new_lengths_bf16_mlcore"] = new_shapes(step_timer(model, "bf16_mlcore"), device, [97, 98, 99, 100])
    bf16 = step_timer(model, "bf16")
    result["new_lengths_bf16"] = new_shapes(bf16, device, [101, 102, 103, 104, 109, 117])
    result["new_lengths_bf16_multiple_of_8"] = new_shapes(bf16, device, [112, 120, 96])
    torch.backends.cuda.enable_cudnn_sdp(False)
    result["new_lengths_bf16_no_cudnn_sdp"] = new_shapes(bf16, device, [105, 106, 107, 108])
    result["new_lengths_fp32_no_cudnn_sdp"] = new_shapes(step_timer(model, "fp32"), device, [93, 94, 95])
    torch.backends.cuda.enable_cudnn_sdp(True)
    result["new_lengths_fp32"] = new_shapes(step_timer(model, "fp32"), device, [89, 90, 91])
    result["seconds"] = time.perf_counter() - started
    text = json.dumps(result, indent=1)
    print(text, flush=True)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
