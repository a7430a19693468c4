"""Files through Django's storage API: uploads checked for size, local paths for stored files, and saving that
leaves nothing behind when the row it belongs to cannot be saved.

Runs in: the web process and the workers. A leaf: it imports nothing of jobs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage, storages


def upload_limit_bytes() -> int:
    """The most bytes an uploaded table may hold, counted once inflated (DISTILLERY_MAX_UPLOAD_MB): what
    mlcore's readers take as max_bytes, so that a small gzip file cannot inflate past the upload limit."""
    return int(settings.DISTILLERY_MAX_UPLOAD_MB * 2**20)


def check_upload_size(upload, *, limit_mb: int | None = None) -> None:
    """Refuse an empty upload, or one over `limit_mb` (default DISTILLERY_MAX_UPLOAD_MB), as a ValidationError
    on `file`. These are the bytes sent; what a gzip file inflates to is capped where it is read
    (upload_limit_bytes)."""
    limit_mb = settings.DISTILLERY_MAX_UPLOAD_MB if limit_mb is None else limit_mb
    if upload.size > limit_mb * 1024 * 1024:
        raise ValidationError({"file": f"the file is {upload.size / 2**20:.1f} MB; the limit is {limit_mb} MB"})
    if upload.size == 0:
        raise ValidationError({"file": "the file is empty"})


@contextlib.contextmanager
def local_upload(upload) -> Iterator[Path]:
    """A filesystem path for an upload: Django's temp file when it spooled to disk, else a copy."""
    temp_path = getattr(upload, "temporary_file_path", None)
    if temp_path is not None:
        yield Path(temp_path())
        return
    suffix = "".join(Path(upload.name).suffixes[-2:])
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        upload.seek(0)
        shutil.copyfileobj(upload, tmp)
        tmp.flush()
        yield Path(tmp.name)


def has_local_paths() -> bool:
    """Whether stored files have filesystem paths (FileSystemStorage), or live elsewhere (S3) and must be copied
    to and from this machine."""
    try:
        default_storage.path("")
    except NotImplementedError:
        return False
    return True


@contextlib.contextmanager
def local_file(name: str) -> Iterator[Path]:
    """A filesystem path for a stored file, copying it out of storage when the backend has no paths."""
    try:
        yield Path(default_storage.path(name))
        return
    except NotImplementedError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / Path(name).name
        with default_storage.open(name, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        yield target


def signs_urls() -> bool:
    """Whether the storage backend hands out presigned URLs (S3 with querystring_auth), so that clients fetch
    files from it directly; the filesystem does not, and downloads stream through the web process there."""
    return bool(getattr(default_storage, "querystring_auth", False))


def presigned_url(name: str, filename: str) -> str:
    """A time-limited URL the client fetches the stored file from directly, saved as `filename`
    (DISTILLERY_S3_PRESIGN_SECONDS); only where signs_urls(). Signed for the endpoint clients reach (the
    "downloads" storage, DISTILLERY_S3_PUBLIC_ENDPOINT_URL) where that is not this process's: signing is local,
    nothing connects to it."""
    signer = storages["downloads"] if "downloads" in settings.STORAGES else default_storage
    return signer.url(name, parameters={"ResponseContentDisposition": f'attachment; filename="{filename}"'})


def save_chunks(name: str, chunks: Iterator[bytes]) -> str:
    """Store a stream of bytes under `name` through a temporary file, never whole in memory (a backend like S3
    uploads a large file in parts from it). Returns the stored name."""
    with tempfile.TemporaryFile() as tmp:
        for chunk in chunks:
            tmp.write(chunk)
        tmp.seek(0)
        return default_storage.save(name, File(tmp, name=Path(name).name))


@contextlib.contextmanager
def saved_unless_failed() -> Iterator[Callable[[str, object], str]]:
    """Save files for a row about to be created, and remove them all if the block fails (the row was not
    saved, so nothing would ever point at them). Yields save(name, content) -> the stored name."""
    saved: list[str] = []

    def save(name: str, content) -> str:
        stored = default_storage.save(name, content)
        saved.append(stored)
        return stored

    try:
        yield save
    except BaseException:
        for stored in saved:
            default_storage.delete(stored)
        raise


def is_dir(path: Path) -> bool:
    """path.is_dir() for a path a user named, False where pathlib raises instead of answering: a component over
    255 bytes (ENAMETOOLONG) made a long server_path a 500."""
    try:
        return path.is_dir()
    except OSError:
        return False


def is_file(path: Path) -> bool:
    """path.is_file() for a path a user named, False where pathlib raises instead of answering (see is_dir)."""
    try:
        return path.is_file()
    except OSError:
        return False


def checkpoint_dir(job_id: int) -> Path:
    """Where a training job's runs keep what outlives a worker process (checkpoints, the trained model), so
    whichever worker takes the job over resumes from it (on a cluster, DISTILLERY_CHECKPOINT_DIR is shared
    storage): one folder per run inside it (adopt_run_dir)."""
    return Path(settings.DISTILLERY_CHECKPOINT_DIR) / f"job-{job_id}"


def adopt_run_dir(job_id: int, attempt: int) -> Path:
    """The folder of the job's run `attempt`: the latest earlier run's folder, renamed (one atomic rename), or a
    new one. A run that was replaced and wakes up later writes only into its own old path, which no later run
    reads: it cannot overwrite its successor's checkpoint or model."""
    root = checkpoint_dir(job_id)
    mine = root / f"attempt-{attempt}"
    if mine.is_dir():
        return mine
    earlier = []
    for path in root.glob("attempt-*") if root.is_dir() else ():
        number = path.name.removeprefix("attempt-")
        if number.isdigit() and int(number) < attempt and path.is_dir():
            earlier.append((int(number), path))
    mine.parent.mkdir(parents=True, exist_ok=True)
    if earlier:
        os.replace(max(earlier)[1], mine)
    else:
        mine.mkdir()
    return mine
