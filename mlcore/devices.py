"""Where tensors live and in what precision: device choice, CPU threads, bf16 autocast, host-to-device copies."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else CPU; asking for CUDA on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was requested but CUDA is not available on this machine")
    return device


def use_all_cpu_threads(device: torch.device) -> None:
    # torch may start with fewer threads than cores; an operator's OMP_NUM_THREADS always wins.
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain fp32.

    "auto" is bf16 where the hardware multiplies bf16 natively: a CUDA device that supports it (Ampere and
    later: about twice the speed, and bf16 keeps fp32's range, so no loss scaling is needed), or a CPU with
    AVX-512 BF16 or AMX (cpu_has_bf16); fp32 on other CPUs, where bf16 is emulated and slower. "bf16" asks for
    it anywhere, "fp32" never. Weights, gradients and the optimiser stay fp32 either way (autocast).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        if precision == "bf16" and not supported:
            raise RuntimeError(f"precision 'bf16' was requested but {device} does not support bfloat16")
        return torch.bfloat16 if supported else None
    return torch.bfloat16 if precision == "bf16" or cpu_has_bf16() else None


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX tiles), as torch's own CPU probes see it.

    There bf16 autocast is the fast path: on a 2-vCPU AMD EPYC with AVX-512 BF16 a 2048-square matmul ran at
    840 GFLOP/s in bf16 against 175 in fp32, and a MiniLM training step at 512 tokens 2.3x faster.
    """
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(probe() for probe in probes if probe is not None)


# Attention kernels for forward passes on CUDA: cuDNN's is left out because it builds a plan for every new
# (batch, length) shape, which dynamic padding meets at every distinct batch length: on an H100 the first bf16
# step at a new length took 0.13-2.8 s against 0.02 s once warm, while with flash / memory-efficient attention a
# new length cost nothing and a warm step was as fast (bench/gpu_probe.py; bench/README.md).
CUDA_ATTENTION = (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for a forward pass (and its loss), and on CUDA attention kernels that need no per-shape
    plan; a no-op for fp32 on CPU."""
    context = contextlib.ExitStack()
    if device.type == "cuda":
        context.enter_context(sdpa_kernel(list(CUDA_ATTENTION)))
    if dtype is not None:
        # No cast cache on CUDA: CUDA graphs cannot record with it (mlcore.graphs), and a BERT forward pass uses
        # each weight once, so the cache saves no cast there.
        context.enter_context(torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=device.type != "cuda"))
    return context


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with every tensor (nested one level in input dicts) on `device`.

    non_blocking: from pinned memory the copy runs asynchronously, so the CPU prepares the next batch while
    the GPU still works; on CPU (or from pageable memory) it is an ordinary copy.
    """

    def move(t: torch.Tensor) -> torch.Tensor:
        return t.to(device, non_blocking=True)

    return {
        key: move(value) if isinstance(value, torch.Tensor) else {k: move(v) for k, v in value.items()}
        for key, value in batch.items()
    }


def pin(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch in page-locked memory, which is what lets to_device's copies to CUDA run asynchronously."""
    return {
        key: value.pin_memory() if isinstance(value, torch.Tensor) else {k: v.pin_memory() for k, v in value.items()}
        for key, value in batch.items()
    }
