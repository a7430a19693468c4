"""A training run's checkpoint mirrored to storage where the backend has no local paths (S3), so that a job
whose worker host vanished resumes on any other host: uploaded after each checkpoint is written, fetched into the
run's folder before training starts, removed once the job has ended.

Keys: checkpoints/job-<id>/attempt-<run>/step-<step>.pt. A run writes under its own attempt only, so a replaced
run that wakes up later never overwrites its successor's checkpoint (the local folders keep the same promise by a
rename: jobs.files.adopt_run_dir); a new run starts from the newest checkpoint of its own or an earlier attempt.

Runs in: the workers (upload, restore) and wherever a job ends or is deleted (forget).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

from ..files import has_local_paths

CHECKPOINT_NAME = "checkpoint.pt"  # mlcore.checkpoint.CHECKPOINT_NAME (that module imports torch)


def _prefix(job_id: int) -> str:
    return f"checkpoints/job-{job_id}"


def upload(job_id: int, attempt: int, step: int, path: Path) -> str | None:
    """Store the checkpoint just written at `path` (streamed, in parts when large), then drop this run's older
    ones; the stored name, or None where storage is the local filesystem (DISTILLERY_CHECKPOINT_DIR is the copy
    that counts there)."""
    if has_local_paths():
        return None
    folder = f"{_prefix(job_id)}/attempt-{attempt}"
    with path.open("rb") as fh:
        stored = default_storage.save(f"{folder}/step-{step:010d}.pt", File(fh))
    for name in _listdir(folder)[1]:  # older steps go only once the new one is whole in storage
        if f"{folder}/{name}" != stored:
            default_storage.delete(f"{folder}/{name}")
    return stored


def restore(job_id: int, attempt: int, folder: Path) -> int | None:
    """Fetch the newest stored checkpoint of run `attempt` or an earlier one into folder/checkpoint.pt (replacing
    a local one: what is stored is at least as new, being uploaded after every local write); its step, or None
    when none is stored or storage is the local filesystem."""
    if has_local_paths():
        return None
    newest = None
    for run in _listdir(_prefix(job_id))[0]:
        number = run.removeprefix("attempt-")
        if not number.isdigit() or int(number) > attempt:
            continue
        for name in _listdir(f"{_prefix(job_id)}/{run}")[1]:
            step = name.removeprefix("step-").removesuffix(".pt")
            if step.isdigit():
                newest = max(newest or (-1, -1, ""), (int(number), int(step), f"{_prefix(job_id)}/{run}/{name}"))
    if newest is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".checkpoint-", suffix=".download")
    try:
        with os.fdopen(fd, "wb") as dst, default_storage.open(newest[2], "rb") as src:
            while block := src.read(1 << 20):
                dst.write(block)
        os.replace(tmp, folder / CHECKPOINT_NAME)  # whole before it is taken for the checkpoint
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return newest[1]


def forget(job_id: int) -> None:
    """Remove every stored checkpoint of a job that has ended (nothing resumes it)."""
    if has_local_paths():
        return
    runs, _ = _listdir(_prefix(job_id))
    for run in runs:
        for name in _listdir(f"{_prefix(job_id)}/{run}")[1]:
            default_storage.delete(f"{_prefix(job_id)}/{run}/{name}")


def _listdir(prefix: str) -> tuple[list[str], list[str]]:
    try:
        return default_storage.listdir(prefix)
    except FileNotFoundError:
        return [], []
