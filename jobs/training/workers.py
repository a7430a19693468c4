"""Which workers are online and what they can run: each worker announces itself and its CUDA GPUs in the shared
cache (Redis) when it is ready and every ANNOUNCE_EVERY seconds after, and an announcement lives TTL seconds, so
a worker that died drops out on its own. The web process reads them to refuse, at launch, a job that asks for a
GPU no worker has.

Runs in: the workers (keep_announcing, from tasks.py) and the web process (cuda_online).
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import cache

log = logging.getLogger(__name__)

ANNOUNCE_EVERY = 30  # seconds between a worker's announcements
TTL = 4 * ANNOUNCE_EVERY  # seconds an announcement counts: a worker missing three in a row is gone
INDEX = "workers:index"


def announce(hostname: str, *, cuda_devices: int) -> None:
    """Record that `hostname` is online with `cuda_devices` GPUs, for TTL seconds."""
    cache.set(f"workers:{hostname}", {"hostname": hostname, "cuda_devices": cuda_devices, "at": time.time()}, TTL)
    names = set(cache.get(INDEX) or ())
    if hostname not in names:  # a lost update between two workers heals at the next announcement
        cache.set(INDEX, sorted(names | {hostname}), None)


def forget(hostname: str) -> None:
    """Take `hostname` off the list at once (a worker shutting down)."""
    cache.delete(f"workers:{hostname}")


def online() -> list[dict]:
    """The announcements still alive: [{hostname, cuda_devices, at}]."""
    names = cache.get(INDEX) or []
    found = cache.get_many([f"workers:{name}" for name in names])
    return [found[key] for key in sorted(found)]


def cuda_online() -> bool:
    """Whether any online worker has a CUDA GPU."""
    return any(worker["cuda_devices"] > 0 for worker in online())


def keep_announcing(hostname: str, *, cuda_devices: int) -> threading.Event:
    """Announce now and every ANNOUNCE_EVERY seconds after, from a daemon thread, until the returned event is
    set (or the process ends)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                announce(hostname, cuda_devices=cuda_devices)
            except Exception:  # Redis away for a moment: the next announcement makes up for it
                log.warning("could not announce worker %s", hostname, exc_info=True)
            stop.wait(ANNOUNCE_EVERY)

    threading.Thread(target=loop, name="distillery-announce", daemon=True).start()
    return stop
