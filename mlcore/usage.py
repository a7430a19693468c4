"""What a training run uses, for its metric stream: the process's resident memory and, on CUDA, the GPU memory
PyTorch holds. Cheap to read (a small /proc file, an allocator counter: no device sync), so the loop samples them
while it trains."""

from __future__ import annotations

import os

import torch

MB = 2**20


def memory_metrics(device: torch.device) -> dict[str, float]:
    """{"system/rss_mb": resident memory of this process, "system/gpu_memory_mb": on CUDA, the memory PyTorch's
    caching allocator holds on the device (what other processes cannot have; tensors use part of it)}, in MiB.
    A figure this platform cannot read is left out."""
    out: dict[str, float] = {}
    rss = resident_bytes()
    if rss is not None:
        out["system/rss_mb"] = rss / MB
    if device.type == "cuda":
        out["system/gpu_memory_mb"] = torch.cuda.memory_reserved(device) / MB
    return out


def resident_bytes() -> int | None:
    """This process's resident set size now (Linux's /proc; None elsewhere). Not getrusage's ru_maxrss, which is
    the peak: a chart over time wants the current figure."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
