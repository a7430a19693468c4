"""Why a job failed, in a sentence its owner can act on ("Base model 'x' could not be loaded: not found on the
Hugging Face Hub"), with no server paths; the traceback, which names them, is kept apart for staff
(Job.error_detail).

Runs in: the workers (lifecycle.running records a failure with it). Exceptions from torch, transformers,
huggingface_hub and httpx are told by their class names, so that this module imports none of them.
"""

from __future__ import annotations

import re
import traceback

from mlcore.config import ConfigError
from mlcore.data import DataError

from ..models import Job

TRACEBACK_FRAMES = 8  # innermost frames kept for staff
REASON_CHARS = 500

# A path from the root (two parts or more), not one inside a URL ("https://host/a/b"): replaced by its last part.
_SERVER_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.@+~-]+/)+([\w.@+~-]*)")

# What went wrong loading a model, by the classes in its chain of causes (first match wins), and what the owner
# reads. OSError messages from transformers say the same in prose; they are matched by text below.
_LOAD_CAUSES = (
    ({"GatedRepoError"}, "it is gated on the Hugging Face Hub and this server has no access to it"),
    ({"RepositoryNotFoundError", "RevisionNotFoundError"}, "not found on the Hugging Face Hub"),
    ({"OfflineModeIsEnabled"}, "not found on this server, and it does not use the Hugging Face Hub (HF_HUB_OFFLINE)"),
    (
        {"ConnectError", "ConnectTimeout", "ConnectionError", "gaierror", "TimeoutException", "ReadTimeout"},
        "the Hugging Face Hub could not be reached from this server",
    ),
)
_LOAD_TEXTS = (
    ("is not a local folder and is not a valid model identifier", "not found"),
    ("no model folder at", "not found: no such model folder on this server"),
    ("outgoing traffic has been disabled", "not found on this server, and it does not use the Hugging Face Hub "
                                            "(HF_HUB_OFFLINE)"),
    ("couldn't connect to", "the Hugging Face Hub could not be reached from this server"),
)  # fmt: skip


def failure_reason(job: Job, exc: BaseException) -> str:
    """A job's failure for its owner: one line saying what failed and why, without server paths."""
    if _is(exc, "ModelLoadError"):
        return _scrub(f"{_model_of(job)} could not be loaded: {_load_cause(exc)}")
    if _is(exc, "OutOfMemoryError"):  # torch.cuda's
        return "The GPU ran out of memory: try a smaller batch size or max_length."
    if isinstance(exc, MemoryError):
        return "The worker ran out of memory: try a smaller batch size, max_length or dataset."
    if isinstance(exc, (DataError, ConfigError)) or _is(exc, "CheckpointMismatch"):  # messages meant for users
        return _scrub(_first_line(exc))
    return _scrub(f"The job stopped on an unexpected error ({type(exc).__name__}: {_first_line(exc)}).")


def failure_detail(exc: BaseException) -> str:
    """The traceback of the exception being handled, for staff."""
    return "".join(traceback.format_exception(exc, limit=-TRACEBACK_FRAMES))


def _model_of(job: Job) -> str:
    """The model the job loads, as its owner named it."""
    if job.kind == Job.Kind.DISTILL and job.teacher_id:
        return f"The teacher {job.teacher.name!r}"
    if job.kind == Job.Kind.CLASSIFY and job.model_id:
        return f"The model {job.model.name!r}"
    if job.base_record_id:
        return f"Base model {job.base_record.name!r}"
    return f"Base model {job.base_model!r}"


def _load_cause(exc: BaseException) -> str:
    """Why mlcore.loading could not load a model: its causes' classes and texts read as a short phrase."""
    causes = _causes(exc)
    if len(causes) == 1:  # raised without a cause: mlcore's own words (a max_length the model cannot take)
        return _first_line(exc)
    names = {cls.__name__ for cause in causes for cls in type(cause).__mro__}
    for classes, phrase in _LOAD_CAUSES:
        if classes & names:
            return phrase
    text = " ".join(str(cause) for cause in causes[1:])
    for needle, phrase in _LOAD_TEXTS:
        if needle in text:
            return phrase
    return _first_line(causes[1])


def _causes(exc: BaseException) -> list[BaseException]:
    """exc and the exceptions it was raised from or during, outermost first, each once."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scrub(text: str) -> str:
    return _SERVER_PATH.sub(lambda m: m.group(1) or "…", text)[:REASON_CHARS]
