"""Checkpoints: everything a training run needs to continue exactly where it stopped, written atomically.

A checkpoint is one file, <folder>/checkpoint.pt, holding:
  - "step", and the data position: "epoch" and "batch_in_epoch" (batches done in that epoch). An epoch's
    batch order is a function of the seed and the epoch (mlcore.sampling), so these two numbers replay the rest
    of it exactly;
  - "loss_sum" and "accuracy_sum", the running sums behind the average train loss and accuracy;
  - "model", "optimizer" and "scheduler" state dicts;
  - "rng": torch's CPU generator, every CUDA device's generator (when there are any) and Python's `random`,
    so that dropout draws the same masks after a resume as it would have without the interruption;
  - "config" (asdict) and "identity": the config, the model it started from and a fingerprint of the data.
    A resume from a checkpoint whose identity differs raises CheckpointMismatch instead of silently mixing runs.

Writing goes to a temporary file in the same folder, then os.replace() swaps it in: a worker killed mid-write
leaves the previous checkpoint whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from mlcore.config import TrainConfig
from mlcore.data import TextDataset

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 1  # bumped when the layout changes; an older file is then refused rather than misread

# Settings that may differ between the interrupted run and its resume: they change neither the numbers nor the
# order of the work (a job that fell back from one GPU to another, or checkpoints at another interval). devices
# splits the same global batches over more or fewer processes (only dropout's draws differ), and a checkpoint
# written before it existed has no such key.
RESUMABLE_CHANGES = ("device", "devices", "checkpoint_every")


class CheckpointMismatch(ValueError):
    """A checkpoint written by a run with other settings, another model or other data; the message says which."""


class Checkpoints:
    """Where one run's checkpoints go, how often, and what they must match to be resumed from."""

    def __init__(self, folder: str | os.PathLike[str] | None, every: int, identity: dict[str, Any]) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.every = every
        self.identity = identity

    @classmethod
    def for_run(
        cls,
        config: TrainConfig,
        output_dir: str | os.PathLike[str],
        checkpoint_dir: str | os.PathLike[str] | None,
        *,
        kind: str,
        source: str,
        splits: dict[str, TextDataset],
    ) -> Checkpoints:
        """checkpoint_dir, or output_dir/"checkpoint" when checkpoints are on and no folder is given."""
        folder = checkpoint_dir
        if folder is None and config.checkpoint_every > 0:
            folder = Path(output_dir) / "checkpoint"
        return cls(folder, config.checkpoint_every, run_identity(config, kind=kind, source=source, splits=splits))

    @property
    def path(self) -> Path | None:
        return self.folder / CHECKPOINT_NAME if self.folder is not None else None

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none; CheckpointMismatch when it is another run's."""
        if self.path is None or not self.path.is_file():
            return None
        # weights_only: a checkpoint is data (tensors, numbers, strings); nothing in it should run code.
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state.get("format") != FORMAT:
            raise CheckpointMismatch(f"{self.path} has checkpoint format {state.get('format')}, not {FORMAT}")
        differences = _differences(state["identity"], self.identity)
        if differences:
            raise CheckpointMismatch(
                f"the checkpoint in {self.folder} is from another run ({'; '.join(differences)}); "
                "start over with resume=False or another checkpoint folder"
            )
        return state

    def due(self, step: int) -> bool:
        return self.folder is not None and self.every > 0 and step % self.every == 0

    def save(self, state: dict[str, Any]) -> Path:
        """Write state (plus the format and this run's identity) atomically; returns the checkpoint's path."""
        assert self.folder is not None and self.path is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".checkpoint-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save({**state, "format": FORMAT, "identity": self.identity}, f)
                f.flush()
                os.fsync(f.fileno())  # on disk before the rename makes it the checkpoint
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path

    def discard(self) -> None:
        """Remove the checkpoint once the finished model is saved (and its folder, when that is left empty)."""
        if self.path is None:
            return
        self.path.unlink(missing_ok=True)
        if self.folder is not None and self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()


def run_identity(config: TrainConfig, *, kind: str, source: str, splits: dict[str, TextDataset]) -> dict[str, Any]:
    """What a resumed run must share with the checkpoint's: the config, the starting model and the data."""
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in RESUMABLE_CHANGES}
    return {"kind": kind, "source": source, "data": fingerprint(splits.items()), "config": settings}


def fingerprint(splits: Iterable[tuple[str, TextDataset]]) -> str:
    """A hash of every split's texts, labels and label names (a 25,000-review split hashes in about 0.1 s)."""
    digest = hashlib.sha256()
    for name, ds in splits:
        digest.update(f"{name}\0{len(ds)}\0{ds.label_names!r}\0".encode())
        for text, label in zip(ds.texts, ds.labels, strict=True):
            digest.update(f"{label}\0{len(text)}\0".encode())
            digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    # A checkpoint from another machine may have a different number of GPUs (or none): then the CUDA streams
    # start afresh, which changes dropout masks but nothing else.
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    out = []
    for key in ("kind", "source", "data"):
        if saved.get(key) != current.get(key):
            out.append("other data" if key == "data" else f"{key} was {saved.get(key)!r}, is now {current.get(key)!r}")
    saved_config, config = saved.get("config", {}), current["config"]
    for key in sorted(saved_config.keys() | config.keys()):
        if saved_config.get(key) != config.get(key):
            out.append(f"{key} was {saved_config.get(key)!r}, is now {config.get(key)!r}")
    return out
