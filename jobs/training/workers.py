"""Which workers are online and what they can run: each worker declares its device and GPU memory (Capacity,
from the machine or DISTILLERY_WORKER_DEVICE / DISTILLERY_WORKER_GPU_MEMORY_GB), consumes the queues of the jobs
that fit it (config/queues.py), and announces itself in the shared cache (Redis) when it is ready and every
ANNOUNCE_EVERY seconds after; an announcement lives TTL seconds, so a worker that died drops out on its own. The
web process reads them to refuse, at launch, a job that asks for a GPU, or GPU memory, that no worker has, or more
GPUs than any one worker has.

Runs in: the workers (declared, keep_announcing, from tasks.py) and the web process (refusal).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from config import queues
from mlcore import hardware

log = logging.getLogger(__name__)

ANNOUNCE_EVERY = 30  # seconds between a worker's announcements
TTL = 4 * ANNOUNCE_EVERY  # seconds an announcement counts: a worker missing three in a row is gone
INDEX = "workers:index"


@dataclass(frozen=True)
class Capacity:
    """What a worker can run: its CUDA GPUs and the memory of the smallest, in GB (0 when it has none)."""

    cuda_devices: int
    gpu_memory_gb: float = 0.0

    def training_queues(self) -> list[str]:
        """The queues a training worker consumes besides `gpu`: on a CPU the runs of up to
        DISTILLERY_MAX_CPU_DEVICES processes; with GPUs `cuda` and the memory tiers its GPU holds, each for up to
        as many devices as it has."""
        if not self.cuda_devices:
            return queues.cpu_training_queues(settings.DISTILLERY_MAX_CPU_DEVICES)
        return queues.cuda_queues(self.gpu_memory_gb, self.cuda_devices)


def declared() -> Capacity:
    """This worker's capacity: the machine's GPUs and their memory (mlcore.hardware, without CUDA), unless the
    operator declared otherwise: DISTILLERY_WORKER_DEVICE=cpu hides its GPUs, =cuda counts one at least (a MIG
    slice, say), DISTILLERY_WORKER_GPU_MEMORY_GB sets the memory (a GPU shared with something else)."""
    device = settings.DISTILLERY_WORKER_DEVICE
    cuda = 0 if device == "cpu" else hardware.cuda_devices()
    if device == "cuda":
        cuda = max(cuda, 1)
    if not cuda:
        return Capacity(0)
    memory = settings.DISTILLERY_WORKER_GPU_MEMORY_GB
    return Capacity(cuda, hardware.gpu_memory_gb() if memory is None else memory)


def announce(hostname: str, *, cuda_devices: int, gpu_memory_gb: float = 0.0) -> None:
    """Record that `hostname` is online with `cuda_devices` GPUs of `gpu_memory_gb` GB, for TTL seconds."""
    entry = {"hostname": hostname, "cuda_devices": cuda_devices, "gpu_memory_gb": gpu_memory_gb, "at": time.time()}
    cache.set(f"workers:{hostname}", entry, TTL)
    names = set(cache.get(INDEX) or ())
    if hostname not in names:  # a lost update between two workers heals at the next announcement
        cache.set(INDEX, sorted(names | {hostname}), None)


def forget(hostname: str) -> None:
    """Take `hostname` off the list at once (a worker shutting down)."""
    cache.delete(f"workers:{hostname}")


def online() -> list[dict]:
    """The announcements still alive: [{hostname, cuda_devices, gpu_memory_gb, at}]."""
    names = cache.get(INDEX) or []
    found = cache.get_many([f"workers:{name}" for name in names])
    return [found[key] for key in sorted(found)]


def cuda_online() -> bool:
    """Whether any online worker has a CUDA GPU."""
    return most_cuda_devices() > 0


def most_cuda_devices() -> int:
    """The most CUDA GPUs one online worker has (0: none has any), which bounds a job's devices on CUDA."""
    return max((worker["cuda_devices"] for worker in online()), default=0)


def refusal(*, cuda: bool, memory_gb: float, gpus: int = 1) -> str | None:
    """Why no online worker would take a training job that asks for a CUDA device (`cuda`), `memory_gb` GB of
    GPU memory (0: any) on each of `gpus` GPUs, or None when one would. A worker takes a memory tier its GPU
    holds whole, so a job is measured by its tier."""
    gpu_workers = [worker for worker in online() if worker["cuda_devices"] > 0]
    if (cuda or memory_gb > 0) and not gpu_workers:
        return "no worker with a CUDA GPU is online"
    if memory_gb > 0:
        tier = queues.memory_tier(memory_gb)
        enough = [worker.get("gpu_memory_gb", 0) for worker in gpu_workers if worker["cuda_devices"] >= gpus]
        largest = max(enough, default=0)
        if largest < tier:
            where = f"{gpus} GPUs" if gpus > 1 else "a GPU"
            return (
                f"no online worker has {where} with {tier} GB or more (gpu_memory_gb {memory_gb:g} is taken by GPUs "
                f"of its tier, {tier} GB); the largest online has {largest:g} GB"
            )
    return None


def keep_announcing(hostname: str, *, cuda_devices: int, gpu_memory_gb: float = 0.0) -> threading.Event:
    """Announce now and every ANNOUNCE_EVERY seconds after, from a daemon thread, until the returned event is
    set (or the process ends)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                announce(hostname, cuda_devices=cuda_devices, gpu_memory_gb=gpu_memory_gb)
            except Exception:  # Redis away for a moment: the next announcement makes up for it
                log.warning("could not announce worker %s", hostname, exc_info=True)
            stop.wait(ANNOUNCE_EVERY)

    threading.Thread(target=loop, name="distillery-announce", daemon=True).start()
    return stop
