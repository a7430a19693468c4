"""A model from outside (a zip, or a folder) unpacked and loaded strictly, for a process that should not spend
the CPU and memory on it: the web process runs these in its helper processes (jobs.offload), where building
the model holds neither its GIL nor its memory. Importing this module loads neither torch nor transformers: its
answers and its one error unpickle anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class ModelCheckError(ValueError):
    """A model that cannot be taken in (an archive that cannot be unpacked safely, or a folder that does not
    load strictly); str() says why."""


@dataclass(frozen=True)
class CheckedModel:
    """What a model record needs from a folder that loaded strictly."""

    label_names: list[str]
    manifest: dict  # its distillery.json, {} when it has none
    num_parameters: int
    size_bytes: int  # its files'


def unpack_archive(
    archive: str | os.PathLike[str], target: str | os.PathLike[str], *, max_bytes: int
) -> tuple[list[str], int]:
    """mlcore.artifacts.unpack_model_archive: the names it skipped, and the bytes it unpacked; its ArchiveError
    a ModelCheckError."""
    from mlcore.artifacts import ArchiveError, folder_size, unpack_model_archive  # imports torch: in the helper

    try:
        skipped = unpack_model_archive(archive, target, max_bytes=max_bytes)
    except ArchiveError as exc:
        raise ModelCheckError(str(exc)) from None
    return skipped, folder_size(target)


def check_model_folder(folder: str | os.PathLike[str]) -> CheckedModel:
    """Load a model folder strictly (mlcore.loading.load_trained: its distillery.json and labels checked against
    its config); a ModelLoadError's message as a ModelCheckError."""
    from mlcore.artifacts import folder_size  # imports torch: in the process that checks
    from mlcore.loading import ModelLoadError, load_trained

    try:
        model, _, label_names, manifest = load_trained(folder, strict=True)
    except ModelLoadError as exc:
        raise ModelCheckError(str(exc)) from None
    return CheckedModel(label_names, manifest, sum(p.numel() for p in model.parameters()), folder_size(folder))
