"""What accelerators this machine has, read without torch and without touching CUDA: a Celery worker asks before
its pool forks, and CUDA must not be initialised in a process that forks afterwards."""

from __future__ import annotations

import os
from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU while the NVIDIA driver is loaded


def cuda_devices() -> int:
    """How many CUDA GPUs a process here may use: the driver's GPUs, as CUDA_VISIBLE_DEVICES narrows them."""
    try:
        present = sum(1 for _ in NVIDIA_GPUS.iterdir())
    except OSError:  # no NVIDIA driver: no GPU
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return present
    chosen = []
    for item in (part.strip() for part in visible.split(",")):
        if not item or item.startswith("-"):  # CUDA stops at the first invalid entry ("-1" hides them all)
            break
        chosen.append(item)
    return min(present, len(chosen))
