"""Uploads held for a column choice: when a file's text and label columns cannot be told, the dashboard keeps it
(signed, for a day) and offers its columns, so that choosing needs no second upload.

Runs in: the web process (hold, read) and the workers (drop_stale_held: Celery beat's drop_stale_held_uploads).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.core import signing
from django.core.files.storage import default_storage

HELD_FOR = 86_400  # seconds an upload waits for its columns to be chosen
_HELD_SALT = "distillery.held-upload"


def hold_upload(owner, upload, columns: list[str]) -> str:
    """Keep an upload whose columns the user has to choose, so that the choice needs no second upload: stored
    under held/ for HELD_FOR seconds, named by a signed token that only `owner` can use and that carries the
    file's columns. Uploads held longer are removed here."""
    drop_stale_held()
    upload.seek(0)
    name = default_storage.save(f"held/{int(time.time())}-{uuid.uuid4().hex}/{Path(upload.name).name}", upload)
    held = {"owner": owner.pk, "name": name, "filename": Path(upload.name).name, "columns": columns}
    return signing.dumps(held, salt=_HELD_SALT, compress=True)


@dataclass(frozen=True)
class HeldFile:
    """A held upload as its form shows it: the file's name as uploaded, its size (None once it is gone) and the
    columns it offers."""

    token: str
    name: str
    size: int | None
    columns: list[str]


def held_file(owner, token: str) -> HeldFile | None:
    """The held upload a token names, or None when the token is not `owner`'s, expired or forged."""
    held = read_held(owner, token)
    if held is None:
        return None
    size = default_storage.size(held["name"]) if default_storage.exists(held["name"]) else None
    filename = held.get("filename") or Path(held["name"]).name  # storage may have changed the name it saved under
    return HeldFile(token, filename, size, list(held["columns"]))


def read_held(owner, token: str) -> dict | None:
    """The held upload a token names ({owner, name, filename, columns}), or None when it is not `owner`'s, expired or
    forged."""
    try:
        held = signing.loads(token, salt=_HELD_SALT, max_age=HELD_FOR)
    except signing.BadSignature:
        return None
    return held if held.get("owner") == owner.pk else None


def drop_stale_held() -> int:
    """Remove the uploads held longer than HELD_FOR (hourly from Celery beat, and whenever one is held); how
    many went."""
    try:
        folders, _ = default_storage.listdir("held")
    except (FileNotFoundError, NotImplementedError):
        return 0
    dropped = 0
    for folder in folders:
        stamp = folder.split("-", 1)[0]
        if stamp.isdigit() and int(stamp) < time.time() - HELD_FOR:
            for file_name in default_storage.listdir(f"held/{folder}")[1]:
                default_storage.delete(f"held/{folder}/{file_name}")
                dropped += 1
    return dropped
