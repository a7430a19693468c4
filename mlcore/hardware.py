"""What accelerators this machine has, read without torch and without touching CUDA: a Celery worker asks before
its pool forks, and CUDA must not be initialised in a process that forks afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU while the NVIDIA driver is loaded


def _visible_entries() -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as its entries, up to the first invalid one (CUDA stops there; "-1" hides all), or None
    when it is unset (every GPU is visible)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return None
    chosen = []
    for item in (part.strip() for part in visible.split(",")):
        if not item or item.startswith("-"):
            break
        chosen.append(item)
    return chosen


def cuda_devices() -> int:
    """How many CUDA GPUs a process here may use: the driver's GPUs, as CUDA_VISIBLE_DEVICES narrows them."""
    try:
        present = sum(1 for _ in NVIDIA_GPUS.iterdir())
    except OSError:  # no NVIDIA driver: no GPU
        return 0
    chosen = _visible_entries()
    return present if chosen is None else min(present, len(chosen))


def gpu_memory_gb() -> float:
    """The memory of the smallest GPU a process here may use, in GB (10**9 bytes, as cards are sold), as the
    driver's nvidia-smi reports it (NVML: CUDA is not touched); 0.0 without an NVIDIA GPU or nvidia-smi. GPUs are
    chosen as CUDA_VISIBLE_DEVICES chooses them, by index or by UUID (a MIG slice is not read: declare it with
    DISTILLERY_WORKER_GPU_MEMORY_GB)."""
    binary = shutil.which("nvidia-smi")
    if binary is None or cuda_devices() == 0:
        return 0.0
    try:
        out = subprocess.run(
            [binary, "--query-gpu=index,uuid,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return 0.0
    gpus = {}  # index or uuid -> MiB
    for line in out.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 3 and parts[2].isdigit():
            gpus[parts[0]] = gpus[parts[1]] = int(parts[2])
    chosen = _visible_entries()
    mib = [gpus[key] for key in (chosen if chosen is not None else gpus) if key in gpus]
    return round(min(mib) * 2**20 / 10**9, 1) if mib else 0.0
