"""One training run on several devices: data-parallel (DDP) over processes of this machine.

A run with config.devices = N > 1 is N processes, ranks 0..N-1. The calling process is rank 0: it keeps its
callback, so the metric stream, cancel requests and checkpoints work as for one device. It starts ranks 1..N-1
as child processes (`python -m mlcore.parallel`) that run the same entry point (finetune or distill) with a
silent callback. Every rank loads the same data, splits and tokenises it the same way and builds the same
seeded model (DistributedDataParallel also broadcasts rank 0's weights), then (mlcore.loop.fit):

  - each global batch (the one a single device would train on, batch_size rows, in the same order) is split
    across the ranks, rank r taking rows r, r+N, r+2N, ... (Group.shard); each rank's loss is weighted by its
    share of the batch, so the averaged gradient is the whole batch's mean: the step count, the learning-rate
    schedule and the expected update are those of one device;
  - the batch's metrics are summed over the ranks in one all_reduce (weighted the same way), so rank 0 reports
    the global batch's loss and accuracy;
  - validation, checkpoints, the test, calibration and the saved model are rank 0's alone; the other ranks end
    when training ends.

Processes and failures: the group is gloo on CPU (the N processes share the machine's cores) and NCCL on CUDA
(rank r on GPU index + r); rendezvous is a TCPStore rank 0 opens on a free loopback port, so no port is guessed.
A rank that fails writes its traceback to the run's temporary folder and exits; the others' next collective
fails and rank 0 raises RuntimeError naming the rank and its error. When rank 0 stops for any reason (cancel,
error) it terminates the children before it returns or raises; if rank 0's process dies outright, each child
sees its stdin (a pipe from rank 0) close and exits at once. The process group is destroyed before run()
returns, so the next job in the same worker process starts clean.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import pickle
import random
import select
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Group", "run"]

# A collective waits this long for the other ranks: rank 0 validates alone after each epoch while the others wait
# for its early-stopping decision, which on CPU can take many minutes. A rank that dies is noticed sooner, when
# its connections close.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=1)
CHILD_EXIT_SECONDS = 60  # after training, how long rank 0 waits for a child to exit before killing it
CHILD_FAILURE_GRACE = 5.0  # when rank 0's collective breaks: how long it waits to see which rank ended
SPEC = "spec.pkl"  # in the run's temporary folder: the entry point and its arguments, for the children


@dataclass(frozen=True)
class Group:
    """This process's place in a multi-device run: rank (0 reports, checkpoints, evaluates and saves) of size."""

    rank: int
    size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: on CUDA the configured index plus the rank; on CPU the CPU."""
        if device.type != "cuda":
            return device
        first = device.index or 0
        if first + self.size > torch.cuda.device_count():
            raise RuntimeError(
                f"devices={self.size} from {device} needs {first + self.size} CUDA devices; this machine has "
                f"{torch.cuda.device_count()}"
            )
        mine = torch.device("cuda", first + self.rank)
        torch.cuda.set_device(mine)
        return mine

    def share_cpu_threads(self, device: torch.device) -> None:
        # N ranks on one CPU each take 1/N of its cores (an operator's OMP_NUM_THREADS still wins).
        if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.size))

    def shard(self, indices: list[int]) -> tuple[list[int], float]:
        """This rank's rows of a global batch and its share of the batch's rows (its loss weight). A rank left
        without rows (a last batch smaller than the group) takes the batch's first row at weight 0, because every
        rank must run a backward pass for the gradients to be averaged."""
        mine = indices[self.rank :: self.size]
        if not mine:
            return indices[:1], 0.0
        return mine, len(mine) / len(indices)

    def seed_dropout(self, seed: int, step: int) -> None:
        """Give ranks 1.. dropout draws of their own (rank 0 keeps the run's stream, which its checkpoints save):
        with the same stream every rank would drop the same units of its rows."""
        if self.rank:
            torch.manual_seed(random.Random(f"mlcore.parallel:{seed}:{self.rank}:{step}").getrandbits(63))

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """values summed over the ranks (every rank gets the sum)."""
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def from_main(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's `flag`, on every rank (early stopping: only rank 0 validates)."""
        value = torch.tensor([int(flag)], device=device)
        dist.broadcast(value, src=0)
        return bool(value.item())


def run(entry: Callable[..., Any], args: tuple, kwargs: dict[str, Any], size: int, device_name: str) -> Any:
    """Call entry(*args, group=Group(0, size), **kwargs) here as rank 0, with ranks 1..size-1 in child processes
    running entry(*args, group=Group(rank, size), **kwargs) without its callback; entry's result on rank 0.

    `entry` must be importable by its module and name (finetune, distill). kwargs["callback"] stays in this
    process. Raises what rank 0 raised, or RuntimeError naming the rank when another rank failed first.
    """
    child_kwargs = {k: v for k, v in kwargs.items() if k != "callback"}
    backend = "nccl" if _is_cuda(device_name) else "gloo"
    with tempfile.TemporaryDirectory(prefix="mlcore-ddp-") as tmp:
        folder = Path(tmp)
        # Rank 0 opens the rendezvous on port 0, so the kernel picks a free port and nothing races for it.
        store = dist.TCPStore("127.0.0.1", 0, size, is_master=True, timeout=COLLECTIVE_TIMEOUT, wait_for_workers=False)
        with open(folder / SPEC, "wb") as f:
            pickle.dump({"entry": (entry.__module__, entry.__qualname__), "args": args, "kwargs": child_kwargs}, f)
        children = [_Child.start(folder, rank, size, store.port, backend) for rank in range(1, size)]
        try:
            _await_children(children, folder)
            dist.init_process_group(backend, store=store, rank=0, world_size=size, timeout=COLLECTIVE_TIMEOUT)
            try:
                result = entry(*args, group=Group(0, size), **kwargs)
            except RuntimeError as exc:
                # Asked before the group goes: destroying it breaks the other ranks' collectives, and they would
                # then fail too. A rank that died breaks rank 0's collective a moment before its exit is seen.
                failure = _child_failure(children, folder, grace=CHILD_FAILURE_GRACE)
                if failure is not None:
                    raise RuntimeError(failure) from exc
                raise
            finally:
                dist.destroy_process_group()
            _wait_for(children, folder)
            return result
        finally:
            _stop(children)


def _is_cuda(device_name: str) -> bool:
    return device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())


@dataclass
class _Child:
    """A rank's process, and the read end of a pipe whose write end only it holds: "joined" comes through it, then
    end of file when the process ends, however it ends (select() waits for that; a process exit cannot be)."""

    rank: int
    process: subprocess.Popen
    pipe: Any  # a binary file

    @classmethod
    def start(cls, folder: Path, rank: int, size: int, port: int, backend: str) -> _Child:
        env = dict(os.environ)
        # The children import mlcore from where this process did, whatever their working directory.
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        read, write = os.pipe()
        args = [sys.executable, "-m", "mlcore.parallel", str(folder), str(rank), str(size), str(port), backend]
        try:
            # stdin is a pipe nobody writes to: it closes when this process ends, however it ends, which the child
            # hears (_exit_with_parent).
            process = subprocess.Popen([*args, str(write)], stdin=subprocess.PIPE, env=env, pass_fds=(write,))
        finally:
            os.close(write)
        return cls(rank, process, os.fdopen(read, "rb"))

    def ended(self, timeout: float = 0.0) -> bool:
        """Whether the process has ended, waiting up to `timeout` seconds for it to."""
        if self.process.poll() is not None:
            return True
        if select.select([self.pipe], [], [], timeout)[0] and not os.read(self.pipe.fileno(), 4096):
            self.process.wait()  # its pipe closed as it exited: reaped at once
            return True
        return False


def _await_children(children: list[_Child], folder: Path) -> None:
    """Return once every child has reached the rendezvous; RuntimeError when one ends first. A rank missing from
    init_process_group would hold rank 0 there for COLLECTIVE_TIMEOUT, while one that dies after it is noticed at
    the next collective, when its connections close; the children join first thing, so the window between is
    small."""
    for child in children:
        if not child.pipe.readline():
            child.process.wait()
            raise RuntimeError(_child_failure(children, folder) or f"rank {child.rank} ended before it joined")


def _wait_for(children: list[_Child], folder: Path) -> None:
    for child in children:
        try:
            child.process.wait(timeout=CHILD_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
    failure = _child_failure(children, folder)
    if failure is not None:
        raise RuntimeError(failure)


def _stop(children: list[_Child]) -> None:
    """Terminate every child still running and reap all of them (none is left behind)."""
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    for child in children:
        try:
            child.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        for pipe in (child.process.stdin, child.pipe):
            if pipe is not None:
                pipe.close()


def _child_failure(children: list[_Child], folder: Path, grace: float = 0.0) -> str | None:
    """The first failed child's error, as one message; None while every child runs (after waiting up to `grace`
    seconds for one to end) or has ended well."""
    deadline = time.monotonic() + grace
    for child in children:
        if not child.ended(max(0.0, deadline - time.monotonic())):
            continue
        name = f"rank {child.rank} of {len(children) + 1}"
        error = folder / f"rank-{child.rank}.error"
        code = child.process.returncode
        if error.is_file():
            return f"{name} failed: {error.read_text().strip().splitlines()[-1]}"
        if code < 0:
            return f"{name} was killed by signal {-code}"
        if code:
            return f"{name} exited with status {code}"
    return None


def _exit_with_parent() -> None:
    """End this process the moment rank 0's ends: its end closes our stdin."""

    def watch() -> None:
        # os.read on the descriptor, not sys.stdin: a daemon thread blocked in a buffered reader holds its lock,
        # which makes the interpreter abort at a normal exit.
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        os._exit(1)

    threading.Thread(target=watch, name="mlcore-parallel-parent", daemon=True).start()


def _child_main(folder: Path, rank: int, size: int, port: int, backend: str, alive: int) -> None:
    _exit_with_parent()
    try:
        # Join first: whatever fails after this, rank 0 hears of it at its next collective (see _await_children).
        store = dist.TCPStore("127.0.0.1", port, size, is_master=False, timeout=COLLECTIVE_TIMEOUT)
        os.write(alive, b"joined\n")  # `alive` stays open until this process ends (_Child)
        dist.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=COLLECTIVE_TIMEOUT)
        try:
            with open(folder / SPEC, "rb") as f:
                spec = pickle.load(f)  # written by rank 0 in a private temporary folder
            module, name = spec["entry"]
            entry = getattr(importlib.import_module(module), name)
            entry(*spec["args"], group=Group(rank, size), **spec["kwargs"])
        finally:
            dist.destroy_process_group()
    except BaseException as exc:
        # The traceback's last line, "Type: message", is what rank 0 reports.
        (folder / f"rank-{rank}.error").write_text("".join(traceback.format_exception(exc)))
        _leave(1)
    _leave(0)


def _leave(status: int) -> None:
    """End a child without the interpreter's shutdown: the process group is gone, and tearing down torch's and
    gloo's C++ state at exit (with the stdin watcher still blocked in a read) sometimes aborted a child that had
    finished its work (SIGABRT), which rank 0 would report as a failure."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":  # a child rank, started by run()
    folder_arg, rank_arg, size_arg, port_arg, backend_arg, alive_arg = sys.argv[1:]
    _child_main(Path(folder_arg), int(rank_arg), int(size_arg), int(port_arg), backend_arg, int(alive_arg))
