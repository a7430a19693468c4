"""The Celery queues, named once: settings route to them, workers consume them, jobs.models picks one per job.

Plain Python (no Django), so the settings, the embedded launcher and the models can all import it.

Queues by capability. `gpu` holds the training any worker may run (on its GPU if it has one, else on its CPU);
`cuda` the training that must run on an NVIDIA GPU; `cuda-<N>g` the training that needs a GPU with N GB or more
(N a tier of GPU_MEMORY_TIERS_GB), so a worker only ever receives a job its GPU can hold: it consumes the tiers
up to its own memory and the broker never hands it a bigger one. A `-x<K>` suffix asks for K devices on one
worker (a data-parallel run): `cuda-x4` four GPUs, `gpu-x2` two GPUs or two CPU processes. `cpu` holds the light
work.
"""

GPU = "gpu"  # training jobs (fine-tune, distil); a worker without a GPU trains on CPU
CPU = "cpu"  # light work: file classification, evaluation, data quality, periodic housekeeping, webhooks
CUDA = "cuda"  # training that asked for device 'cuda': consumed by workers with an NVIDIA GPU only
ALL = (GPU, CPU)  # what a worker that does everything consumes (make up, the Procfile's worker)

# The GPU memory a training job may ask for is rounded up to one of these (GB, decimal, as cards are sold and as
# their drivers report: a "16 GB" T4 has 15360 MiB = 16.1 GB, an "80 GB" H100 81559 MiB = 85.5 GB).
GPU_MEMORY_TIERS_GB = (8, 12, 16, 24, 32, 40, 48, 80, 96, 141, 192)


# The most devices one job may ask for: mlcore.config's `devices` range, which a test holds this to (config/ is not
# imported by mlcore, nor mlcore by this plain file).
MAX_DEVICES = 8


def memory_tier(gb: float) -> int:
    """The smallest tier holding `gb` GB; ValueError above the largest."""
    for tier in GPU_MEMORY_TIERS_GB:
        if gb <= tier:
            return tier
    raise ValueError(f"{gb:g} GB is more than the largest GPU tier ({GPU_MEMORY_TIERS_GB[-1]} GB)")


def memory_queue(tier: int) -> str:
    return f"{CUDA}-{tier}g"


def with_devices(name: str, count: int) -> str:
    """The queue of `name`'s jobs that need `count` devices on one worker (`name` itself for one)."""
    return name if count <= 1 else f"{name}-x{count}"


def training_queue(*, cuda: bool, memory_gb: float, devices: int = 1) -> str:
    """The queue of a training job that asks for a CUDA device (`cuda`), `memory_gb` GB of GPU memory (0: any) and
    `devices` devices on one worker (for CUDA: the GPUs it needs, counted from index 0)."""
    if memory_gb > 0:
        return with_devices(memory_queue(memory_tier(memory_gb)), devices)
    return with_devices(CUDA if cuda else GPU, devices)


def cuda_queues(memory_gb: float, gpus: int = 1) -> list[str]:
    """What a training worker with `gpus` NVIDIA GPUs of `memory_gb` GB consumes besides `gpu`: `cuda` and every
    tier its memory holds (none when it is unknown, 0), each for 1 to `gpus` devices, and `gpu` for 2 to `gpus`."""
    bases = [CUDA, *(memory_queue(tier) for tier in GPU_MEMORY_TIERS_GB if tier <= memory_gb)]
    many = range(2, min(gpus, MAX_DEVICES) + 1)
    return [*bases, *(with_devices(base, n) for base in [GPU, *bases] for n in many)]


def cpu_training_queues(processes: int) -> list[str]:
    """What a training worker without a GPU consumes besides `gpu`: runs of 2 to `processes` CPU processes."""
    return [with_devices(GPU, n) for n in range(2, min(processes, MAX_DEVICES) + 1)]


def every() -> list[str]:
    """Every queue a message can wait in (the monitoring reads each one's depth)."""
    bases = [GPU, CUDA, *(memory_queue(tier) for tier in GPU_MEMORY_TIERS_GB)]
    return [CPU, *(with_devices(base, n) for base in bases for n in range(1, MAX_DEVICES + 1))]
