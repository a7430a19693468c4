"""Domain operations on datasets, jobs and models. Views and tasks call these; they call mlcore."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import io
import itertools
import json
import logging
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.db.models.deletion import ProtectedError
from django.utils import timezone
from django.utils.text import slugify

from mlcore import catalogue, recipes
from mlcore.config import ConfigError, DistillConfig, TrainConfig, config_defaults, config_from_dict
from mlcore.data import ColumnChoiceError, DataError, TextDataset, detect_format, read_table

from .models import Dataset, Job, MetricPoint, ModelRecord, Sweep

log = logging.getLogger(__name__)


# --- datasets ---------------------------------------------------------------------------------------


def create_dataset(
    owner, name: str, upload, *, text_column: str | None = None, label_column: str | None = None
) -> Dataset:
    """Validate an uploaded file with mlcore and store it; raise ValidationError and store nothing if bad.

    1. check the size and the type from the file name;
    2. parse and validate the whole file (encoding, columns, empty texts, labels);
    3. save the file through the storage API and the row in one go, removing the file if the row fails.
    """
    _check_upload_size(upload)
    try:
        fmt = detect_format(upload.name)
        with _local_upload(upload) as path:
            data, info = read_table(
                path, format=fmt, text_column=text_column or None, label_column=label_column or None
            )
    except ColumnChoiceError as exc:  # the file's columns go with the message, to choose from
        raise ValidationError({f"{exc.role}_column": str(exc), "columns": exc.columns}) from None
    except DataError as exc:
        raise ValidationError({"file": str(exc)}) from None

    upload.seek(0)
    stored_name = default_storage.save(f"datasets/{uuid.uuid4().hex}/{Path(upload.name).name}", upload)
    try:
        return Dataset.objects.create(
            owner=owner,
            name=name or Path(upload.name).stem,
            file=stored_name,
            original_filename=Path(upload.name).name,
            format=info.format,
            text_column=info.text_column,
            label_column=info.label_column,
            num_rows=info.num_rows,
            labels=data.label_names,
            label_counts=info.label_counts,
            size_bytes=upload.size,
        )
    except Exception:
        default_storage.delete(stored_name)
        raise


HELD_FOR = 86_400  # seconds an upload waits for its columns to be chosen
_HELD_SALT = "distillery.held-upload"


def hold_upload(owner, upload, columns: list[str]) -> str:
    """Keep an upload whose columns the user has to choose, so that the choice needs no second upload: stored
    under held/ for HELD_FOR seconds, named by a signed token that only `owner` can use and that carries the
    file's columns. Uploads held longer are removed here."""
    drop_stale_held()
    upload.seek(0)
    name = default_storage.save(f"held/{int(time.time())}-{uuid.uuid4().hex}/{Path(upload.name).name}", upload)
    return signing.dumps({"owner": owner.pk, "name": name, "columns": columns}, salt=_HELD_SALT, compress=True)


def held_columns(owner, token: str) -> list[str] | None:
    """The columns a held upload offers, or None when the token is not `owner`'s, expired or forged."""
    held = _read_held(owner, token)
    return held["columns"] if held else None


def create_dataset_from_held(
    owner, name: str, token: str, *, text_column: str | None = None, label_column: str | None = None
) -> Dataset:
    """create_dataset() on a held upload; the held copy goes once the dataset is made (and stays for another
    choice if it is refused)."""
    held = _read_held(owner, token)
    if held is None or not default_storage.exists(held["name"]):
        raise ValidationError({"file": "the file waited too long for its columns; choose it again"})
    with default_storage.open(held["name"], "rb") as fh:
        upload = File(fh, name=Path(held["name"]).name)
        dataset = create_dataset(owner, name, upload, text_column=text_column, label_column=label_column)
    default_storage.delete(held["name"])
    return dataset


def _read_held(owner, token: str) -> dict | None:
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


def dataset_folders() -> list[dict]:
    """The folder datasets under DISTILLERY_DATASET_ROOTS that can be imported: [{"path", "splits"}], each root
    itself when it is one, else its subfolders that are."""
    from mlcore.folders import folder_splits, is_folder_dataset

    found = []
    for root in settings.DISTILLERY_DATASET_ROOTS:
        candidates = [root] if is_folder_dataset(root) else sorted(p for p in root.glob("*/") if is_folder_dataset(p))
        found += [{"path": str(path), "splits": folder_splits(path)} for path in candidates]
    return found


def create_folder_dataset(owner, name: str, path: str, split: str = "") -> Dataset:
    """Import a server folder in the IMDB layout (mlcore.folders) as a dataset. Store nothing if it is bad.

    `path` must lie under one of DISTILLERY_DATASET_ROOTS (a relative path is taken from the first root that
    has it); anything else is refused, so that users cannot read arbitrary server files.
    """
    from mlcore.folders import read_folder

    folder = _allowed_folder(path)
    try:
        data, info = read_folder(folder, split or None, max_bytes=settings.DISTILLERY_MAX_UPLOAD_MB * 1024 * 1024)
    except DataError as exc:
        raise ValidationError({"server_path": str(exc)}) from None
    source = f"{folder.name}/{info.split}" if info.split else folder.name
    return _store_rows(owner, name or source.replace("/", "-"), data, source=source)


def create_hub_dataset(
    owner, name: str, dataset_id: str, split: str = "train", *, config: str = "",
    text_column: str | None = None, label_column: str | None = None,
) -> Dataset:  # fmt: skip
    """Import one split of a Hugging Face Hub dataset (needs internet) as a dataset. Store nothing if it is bad.

    Only hub ids ("name" or "owner/name") are taken: load_dataset would also open server paths.
    """
    from mlcore.hubdata import read_hub_dataset

    dataset_id, split = (dataset_id or "").strip(), (split or "train").strip()
    if not _HUB_ID.fullmatch(dataset_id) or Path(dataset_id).exists():
        raise ValidationError({"hub_id": f"{dataset_id!r} is not a hub dataset id such as 'stanfordnlp/imdb'"})
    try:
        data, info = read_hub_dataset(
            dataset_id, split, config=config or None, text_column=text_column or None,
            label_column=label_column or None,
        )  # fmt: skip
    except DataError as exc:
        raise ValidationError({"hub_id": str(exc)}) from None
    source = f"{dataset_id}:{config}/{split}" if config else f"{dataset_id}/{split}"
    return _store_rows(
        owner, name or source.replace("/", "-"), data, source=source, columns=(info.text_column, info.label_column)
    )


# A hub id: "name" or "owner/name", of letters, digits, "-", "_" and "." (not starting with one of the last).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def _store_rows(
    owner, name: str, data: TextDataset, *, source: str, columns: tuple[str, str] = ("text", "label")
) -> Dataset:
    """Write a dataset read from elsewhere (a folder, the hub) as one gzipped JSONL in storage, so that jobs read
    it like an upload; its record names `source`. The file is removed if the record cannot be saved."""
    import gzip
    import json

    text_key, label_key = columns
    rows = zip(data.texts, data.labels, strict=True)
    lines = "".join(
        json.dumps({text_key: t, label_key: data.label_names[y]}, ensure_ascii=False) + "\n" for t, y in rows
    )
    body = gzip.compress(lines.encode("utf-8"), compresslevel=6)
    filename = re.sub(r"[^\w.-]+", "-", source).strip("-") + ".jsonl.gz"
    stored_name = default_storage.save(f"datasets/{uuid.uuid4().hex}/{filename}", File(io.BytesIO(body)))
    try:
        return Dataset.objects.create(
            owner=owner, name=name[:200], file=stored_name, original_filename=source[:255], format="jsonl",
            text_column=text_key, label_column=label_key, num_rows=len(data), labels=data.label_names,
            label_counts=data.label_counts(), size_bytes=len(body),
        )  # fmt: skip
    except Exception:
        default_storage.delete(stored_name)
        raise


def _allowed_folder(path: str) -> Path:
    roots = settings.DISTILLERY_DATASET_ROOTS
    if not roots:
        raise ValidationError({"server_path": "this server imports no folders (DISTILLERY_DATASET_ROOTS is not set)"})
    given = Path(path or "")
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    for candidate in candidates:
        resolved = candidate.resolve()  # symlinks and ".." resolved before the check, not after
        if any(resolved.is_relative_to(root) for root in roots) and resolved.is_dir():
            return resolved
    raise ValidationError(
        {"server_path": f"no dataset folder {path!r} under the folders this server imports from "
                        f"({', '.join(map(str, roots))})"}
    )  # fmt: skip


def _check_upload_size(upload) -> None:
    limit = settings.DISTILLERY_MAX_UPLOAD_MB * 1024 * 1024
    if upload.size > limit:
        raise ValidationError(
            {"file": f"the file is {upload.size / 2**20:.1f} MB; the limit is {settings.DISTILLERY_MAX_UPLOAD_MB} MB"}
        )
    if upload.size == 0:
        raise ValidationError({"file": "the file is empty"})


@contextlib.contextmanager
def _local_upload(upload) -> Iterator[Path]:
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


def load_dataset(dataset: Dataset) -> TextDataset:
    with local_file(dataset.file.name) as path:
        data, _ = read_table(
            path, format=dataset.format, text_column=dataset.text_column, label_column=dataset.label_column
        )
    return data


PREVIEW_ROWS = 10  # sample rows a preview shows by default
PREVIEW_MAX_ROWS = 50
PREVIEW_TEXT_CHARS = 400  # characters of each sample text; the full text is in the file
PREVIEW_CACHE_SECONDS = 3600  # a dataset's file never changes, so its token lengths can be kept


def dataset_preview(dataset: Dataset, *, model_id: str = "", max_length: int = 128, rows: int = PREVIEW_ROWS) -> dict:
    """What a dataset holds: its first rows, its label distribution, and its texts' lengths in the tokens of
    `model_id` (a catalogue id; the bundled model by default) with the share that max_length would cut.

    Raises ValidationError for a model outside the catalogue, one that cannot be loaded here (a hub id offline),
    or a max_length or row count out of range. The token statistics are cached per (dataset, model, max_length).
    """
    from django.core.cache import cache

    from mlcore.loading import ModelLoadError
    from mlcore.preview import token_length_summary

    model_id = model_id or catalogue.BUNDLED_ID
    entry = next((e for e in catalogue.catalogue() if e["id"] == model_id), None)
    if entry is None:
        raise ValidationError({"model": f"{model_id!r} is not in the catalogue (GET /api/catalogue/)"})
    if not entry["available"]:
        raise ValidationError({"model": f"{model_id} is not available on this server (offline, or not installed)"})
    if not 8 <= max_length <= 512:
        raise ValidationError({"max_length": "max_length must be between 8 and 512 tokens"})
    if not 0 <= rows <= PREVIEW_MAX_ROWS:
        raise ValidationError({"rows": f"rows must be between 0 and {PREVIEW_MAX_ROWS}"})
    # The stored file's name too: ids restart in a fresh database while the cache (Redis) lives on.
    stored = hashlib.sha1(dataset.file.name.encode(), usedforsecurity=False).hexdigest()[:16]
    key = f"preview:{dataset.pk}:{stored}:{model_id}:{max_length}"
    preview = cache.get(key)
    if preview is None:  # the file is read and tokenised once per key, not on every page view
        data = load_dataset(dataset)
        try:
            tokens = token_length_summary(data.texts, model_id, max_length=max_length)
        except ModelLoadError as e:
            raise ValidationError({"model": str(e)}) from e
        sample = [
            {"text": text[:PREVIEW_TEXT_CHARS], "text_chars": len(text), "label": data.label_names[label]}
            for text, label in zip(data.texts[:PREVIEW_MAX_ROWS], data.labels[:PREVIEW_MAX_ROWS], strict=True)
        ]
        preview = {
            "id": dataset.pk, "num_rows": len(data), "labels": data.label_names, "label_counts": data.label_counts(),
            "model": model_id, "max_length": max_length, "rows": sample, "tokens": tokens,
        }  # fmt: skip
        cache.set(key, preview, PREVIEW_CACHE_SECONDS)
    return preview | {"rows": preview["rows"][:rows]}


# --- jobs -------------------------------------------------------------------------------------------


def create_job(
    owner,
    *,
    kind: str,
    dataset: Dataset,
    params: dict | None = None,
    base_model: str = "",
    teacher: ModelRecord | None = None,
    sweep: Sweep | None = None,
    recipe: str = "",
    test_dataset: Dataset | None = None,
    webhook_url: str = "",
) -> Job:
    """Validate a job request, save it queued, and enqueue it (and announce it) once the transaction commits.
    A recipe (mlcore.recipes) fills in the parameters the request leaves out."""
    params = dict(params or {})
    if recipe and kind in recipes.KINDS:  # another kind is refused below
        params = {**recipe_params(recipe, kind), **params}
    params.setdefault("checkpoint_every", settings.DISTILLERY_CHECKPOINT_EVERY)
    config_cls = DistillConfig if kind == Job.Kind.DISTILL else TrainConfig
    try:
        config = config_from_dict(config_cls, params)
    except ConfigError as exc:
        raise ValidationError({"params": str(exc)}) from None

    if kind == Job.Kind.FINETUNE:
        base_model = base_model or catalogue.BUNDLED_ID
        try:
            catalogue.resolve_model(base_model)
        except ValueError as exc:
            raise ValidationError({"base_model": str(exc)}) from None
    elif kind == Job.Kind.DISTILL:
        if teacher is None:
            raise ValidationError({"teacher": "a distillation job needs a teacher model"})
        if sorted(teacher.label_names) != sorted(dataset.labels):
            raise ValidationError(
                {
                    "dataset": f"the dataset's labels {dataset.labels} differ from the teacher's "
                    f"{teacher.label_names}"
                }
            )
        base_model = teacher.name
    else:
        hint = "; classify a file with POST /api/classify/file/" if kind == Job.Kind.CLASSIFY else ""
        raise ValidationError({"kind": f"unknown job kind {kind!r}; use finetune or distill{hint}"})

    _check_active_jobs(owner, adding=1)
    _check_webhook(webhook_url)
    if test_dataset is not None:
        unknown = sorted(set(test_dataset.labels) - set(dataset.labels))
        if unknown:
            raise ValidationError(
                {"test_dataset": f"its labels {unknown} are not among the training dataset's {dataset.labels}"}
            )

    from .tasks import run_job  # tasks imports services; import here to keep the cycle one-way

    task_id = uuid.uuid4().hex
    with transaction.atomic():
        job = Job.objects.create(
            owner=owner,
            kind=kind,
            dataset=dataset,
            base_model=base_model,
            teacher=teacher,
            params=_config_dict(config),
            celery_task_id=task_id,
            sweep=sweep,
            test_dataset=test_dataset,
            webhook_url=webhook_url,
        )
        transaction.on_commit(lambda: run_job.apply_async((job.pk,), task_id=task_id))
        # After the commit: a job rolled back with its sweep was never there.
        transaction.on_commit(lambda: broadcast_status(job))
    return job


def _check_webhook(url: str) -> None:
    """An http(s) URL, on one of DISTILLERY_WEBHOOK_HOSTS when the operator names some."""
    if not url:
        return
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"webhook_url": "give an http:// or https:// URL"})
    allowed = settings.DISTILLERY_WEBHOOK_HOSTS
    if allowed and parts.hostname not in allowed:
        raise ValidationError({"webhook_url": f"{parts.hostname} is not a webhook host here; ask the operator"})


def _check_active_jobs(owner, *, adding: int, what: str = "another") -> None:
    """Refuse jobs that would take a user past DISTILLERY_MAX_ACTIVE_JOBS queued or running training jobs (0: no
    limit), so that one user's sweeps cannot fill the GPU queue for everyone."""
    limit = settings.DISTILLERY_MAX_ACTIVE_JOBS
    if not limit:
        return
    training = (Job.Kind.FINETUNE, Job.Kind.DISTILL)
    active = Job.objects.filter(owner=owner, kind__in=training, status__in=(Job.Status.QUEUED, Job.Status.RUNNING))
    count = active.count()
    if count + adding > limit:
        jobs = f"{adding} job{'s' if adding != 1 else ''}"
        raise ValidationError({
            "detail": f"you have {count} jobs queued or running and {what} {jobs} would pass the limit of {limit}: "
            "wait for some to finish, or cancel some"
        })  # fmt: skip


# --- sweeps -----------------------------------------------------------------------------------------

# What a grid may vary besides the job kind's hyperparameters.
SWEEP_AXES = {Job.Kind.FINETUNE: "base_model", Job.Kind.DISTILL: "teacher"}


def create_sweep(
    owner,
    *,
    kind: str,
    dataset: Dataset,
    grid: dict | None = None,
    search: dict | None = None,
    params: dict | None = None,
    base_model: str = "",
    teacher: ModelRecord | None = None,
    name: str = "",
    recipe: str = "",
    test_dataset: Dataset | None = None,
    webhook_url: str = "",
) -> Sweep:
    """Queue one job per combination of the grid's values, or per trial of a random search
    ({"space": ..., "trials": n, "seed": s}; mlcore.search), all or none: a combination that create_job refuses
    refuses the sweep, naming it. Either may vary hyperparameters, and base_model (fine-tune) or teacher
    (distillation, model ids) to compare several."""
    params = dict(params or {})
    if (grid is None) == (search is None):
        raise ValidationError({"grid": "give either a grid (every combination) or a search (random trials)"})
    field = "grid" if grid is not None else "search"
    if grid is not None:
        axes = _check_grid(kind, grid, params)
        combinations = [dict(zip(axes, v, strict=True)) for v in itertools.product(*(grid[axis] for axis in axes))]
    else:
        combinations = _search_trials(kind, search, params)
        axes = list(search["space"])
        grid = {axis: [trial[axis] for trial in combinations] for axis in axes}  # what each trial drew
    if recipe:  # stored expanded, so the sweep shows what its jobs share; the sweep overrides the recipe
        preset = recipe_params(recipe, kind)
        params = {**{k: v for k, v in preset.items() if k not in grid}, **params}
    if ("base_model" in axes and base_model) or ("teacher" in axes and teacher is not None):
        raise ValidationError({field: f"{SWEEP_AXES[kind]} is both fixed and swept; choose one"})
    teachers = {}
    if "teacher" in axes:
        if not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in grid["teacher"]):
            raise ValidationError({field: "teacher: give model ids"})
        visible = ModelRecord.objects.visible_to(owner).in_bulk(grid["teacher"])
        missing = [str(pk) for pk in dict.fromkeys(grid["teacher"]) if pk not in visible]
        if missing:
            raise ValidationError({field: f"teacher: no model {', '.join(missing)} of yours"})
        teachers = visible
    _check_active_jobs(owner, adding=len(combinations), what="this sweep's")
    with transaction.atomic():
        sweep = Sweep.objects.create(
            owner=owner, kind=kind, dataset=dataset, test_dataset=test_dataset, params=params, grid=grid,
            search=search, base_model=base_model, teacher=teacher, webhook_url=webhook_url,
            name=name or f"{Job.Kind(kind).label} {'search' if search else 'sweep'} over {', '.join(axes)}",
        )  # fmt: skip
        for combination in combinations:
            job_params = {k: v for k, v in combination.items() if k not in SWEEP_AXES.values()}
            try:
                create_job(
                    owner, kind=kind, dataset=dataset, params={**params, **job_params},
                    base_model=combination.get("base_model", base_model),
                    teacher=teachers[combination["teacher"]] if "teacher" in combination else teacher,
                    sweep=sweep, test_dataset=test_dataset, webhook_url=webhook_url,
                )  # fmt: skip
            except ValidationError as exc:
                where = ", ".join(f"{k}={v}" for k, v in combination.items())
                raise ValidationError({field: f"{where}: {'; '.join(exc.messages)}"}) from None
    return sweep


def _check_axes(kind: str, names, params: dict, field: str) -> None:
    """Each swept name is a parameter of the job kind (or its base_model/teacher) that params do not fix."""
    config_cls = DistillConfig if kind == Job.Kind.DISTILL else TrainConfig
    allowed = [f.name for f in dataclasses.fields(config_cls)]
    if kind in SWEEP_AXES:
        allowed.append(SWEEP_AXES[kind])
    for axis in names:
        if axis not in allowed:
            raise ValidationError({field: f"{axis!r} cannot be swept; choose from {', '.join(allowed)}"})
        if axis in params:
            raise ValidationError({field: f"{axis!r} is both fixed in params and swept; choose one"})


def _check_grid(kind: str, grid, params: dict) -> list[str]:
    """The grid's axes in order, once it is known to be {name: [distinct values]} within the job limit."""
    if not isinstance(grid, dict) or not grid:
        raise ValidationError({"grid": "give {parameter: [values, ...]} with at least one parameter"})
    _check_axes(kind, grid, params, "grid")
    combinations = 1
    for axis, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValidationError({"grid": f"{axis}: give a list of values"})
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise ValidationError({"grid": f"{axis}: a value is repeated"})
        combinations *= len(values)
    limit = settings.DISTILLERY_SWEEP_MAX_JOBS
    if combinations > limit:
        raise ValidationError({"grid": f"{combinations} combinations; at most {limit} jobs per sweep"})
    return list(grid)


def _search_trials(kind: str, search, params: dict) -> list[dict]:
    """The trials a random search draws (mlcore.search), once its space names sweepable parameters and its
    trials fit the job limit."""
    from mlcore.search import SearchError, sample

    if not isinstance(search, dict) or not isinstance(search.get("space"), dict):
        raise ValidationError({"search": 'give {"space": {parameter: {distribution: [...]}}, "trials": n}'})
    unknown = set(search) - {"space", "trials", "seed"}
    if unknown:
        raise ValidationError({"search": f"unknown key {sorted(unknown)[0]!r}; use space, trials and seed"})
    _check_axes(kind, search["space"], params, "search")
    trials, limit = search.get("trials", 8), settings.DISTILLERY_SWEEP_MAX_JOBS
    if isinstance(trials, int) and trials > limit:
        raise ValidationError({"search": f"{trials} trials; at most {limit} jobs per sweep"})
    try:
        return sample(search["space"], trials, seed=search.get("seed", 0))
    except SearchError as exc:
        raise ValidationError({"search": str(exc)}) from None


def sweep_runs(sweep: Sweep) -> dict:
    """Each job of the sweep with the values it was given and its model's results, the best job by validation
    accuracy (the test rows stay unseen by the choice), and how many jobs are in each status."""
    runs = []
    # Prefetched with their models by Sweep.objects.with_runs(); sorted here so that any caller gets job order.
    for job in sorted(sweep.jobs.all(), key=lambda j: j.pk):
        metrics = job.result_model.metrics if job.result_model else {}
        runs.append({
            "job": job.pk,
            "status": job.status,
            "progress": round(job.progress, 4),
            "values": {axis: _swept_value(job, axis) for axis in sweep.grid},
            "model": job.result_model_id,
            "valid_accuracy": metrics.get("val/accuracy"),
            "test_accuracy": metrics.get("test/accuracy"),
            "avg_train_loss": metrics.get("train/avg_loss"),
            "error": job.error,
        })  # fmt: skip
    scored = [r for r in runs if r["valid_accuracy"] is not None]
    best = max(scored, key=lambda r: r["valid_accuracy"], default=None)  # the earlier job on a tie
    counts = {status: sum(r["status"] == status for r in runs) for status in Job.Status.values}
    return {
        "runs": runs, "best": best["job"] if best else None,
        "best_valid_accuracy": best["valid_accuracy"] if best else None,
        "counts": counts, "finished": all(r["status"] in Job.FINISHED for r in runs),
    }  # fmt: skip


def _swept_value(job: Job, axis: str):
    if axis == "base_model":
        return job.base_model
    if axis == "teacher":
        return job.teacher_id
    return job.params.get(axis)


def cancel_sweep(sweep: Sweep) -> list[Job]:
    """Cancel every job of the sweep that has not finished; the cancelled (or cancelling) jobs."""
    return [request_cancel(job) for job in sweep.jobs.exclude(status__in=Job.FINISHED).order_by("pk")]


def delete_sweep(sweep: Sweep) -> None:
    """Delete a finished sweep and its jobs (their metric points and files); the models they trained stay."""
    if sweep.jobs.exclude(status__in=Job.FINISHED).exists():
        raise ValidationError({"status": "jobs of this sweep are queued or running: cancel the sweep first"})
    with transaction.atomic():
        for job in sweep.jobs.all():
            delete_job(job)
        sweep.delete()


def create_classify_job(owner, upload, *, model: ModelRecord | None = None, text_column: str | None = None) -> Job:
    """Validate a file of texts now (clear errors, nothing stored if bad), store it, and queue a job on the
    CPU queue that writes a CSV with each row's label and probabilities (runner.classify_file)."""
    from mlcore.data import read_texts

    model = model or promoted_model(owner)
    if model is None:
        raise ValidationError({"model": "no promoted model: promote one, or pass the id of one of your models"})
    _check_upload_size(upload)
    try:
        with _local_upload(upload) as path:
            table = read_texts(path, format=detect_format(upload.name), text_column=text_column or None)
    except DataError as exc:
        raise ValidationError({"file": str(exc)}) from None

    from .tasks import run_job

    upload.seek(0)
    stored_name = default_storage.save(f"classify/input/{uuid.uuid4().hex}/{Path(upload.name).name}", upload)
    task_id = uuid.uuid4().hex
    try:
        with transaction.atomic():
            job = Job.objects.create(
                owner=owner,
                kind=Job.Kind.CLASSIFY,
                model=model,
                base_model=model.name,
                input_file=stored_name,
                input_filename=Path(upload.name).name,
                params={"text_column": table.text_column, "format": table.format, "rows": len(table.texts)},
                celery_task_id=task_id,
            )
            transaction.on_commit(lambda: run_job.apply_async((job.pk,), task_id=task_id, queue="cpu"))
    except Exception:
        default_storage.delete(stored_name)
        raise
    broadcast_status(job)
    return job


def load_texts(job: Job):
    """The texts of a classify job's stored upload (mlcore.data.TextTable)."""
    from mlcore.data import read_texts

    with job.input_file.open("rb") as fh, tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(job.input_filename).name
        path.write_bytes(fh.read())
        return read_texts(path, format=job.params.get("format"), text_column=job.params.get("text_column"))


def save_output(job: Job, csv_path: Path) -> None:
    with csv_path.open("rb") as fh:
        name = default_storage.save(f"classify/output/{uuid.uuid4().hex}/{csv_path.name}", File(fh))
    Job.objects.filter(pk=job.pk).update(output_file=name)
    job.output_file.name = name


def _config_dict(config: TrainConfig) -> dict:
    from dataclasses import asdict

    return asdict(config)


def job_defaults() -> dict:
    return {"finetune": config_defaults(TrainConfig), "distill": config_defaults(DistillConfig)}


def recipe_params(name: str, kind: str) -> dict:
    """The parameters recipe `name` sets for a job kind; a ValidationError naming the known recipes otherwise."""
    try:
        return recipes.recipe(name).params(kind)
    except ValueError as exc:
        raise ValidationError({"recipe": str(exc)}) from None


def job_recipes() -> dict:
    """Each recipe's summary and the parameters it sets per job kind (over job_defaults())."""
    return {name: r.to_dict() for name, r in recipes.RECIPES.items()}


def claim_job(job_id: int, worker: str, *, redelivered: bool = False) -> Job | None:
    """Take a job for this worker, or None if there is nothing to run.

    A queued job moves to running. A running job is taken over only when its worker is gone: the broker
    redelivered its task (late acks: the worker process died), or its heartbeat is older than
    DISTILLERY_STALE_AFTER seconds (the whole machine went away; reap_stale_jobs sent the task again). It resumes
    from its last checkpoint, up to DISTILLERY_MAX_ATTEMPTS runs, and fails with a clear message after that.
    """
    now = timezone.now()
    if Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker, attempts=F("attempts") + 1
    ):
        job = Job.objects.select_related("dataset", "teacher").get(pk=job_id)
        broadcast_status(job)
        return job
    orphan = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).first()
    if orphan is not None and not (redelivered or is_stale(orphan, now)):
        orphan = None
    if orphan is None:
        return None  # taken by a live worker, finished, cancelled while queued, or deleted
    if orphan.attempts >= settings.DISTILLERY_MAX_ATTEMPTS:
        finish_job(
            orphan,
            Job.Status.FAILED,
            error=f"the worker running this job ({orphan.worker or 'unknown'}) stopped before it finished, "
            f"{orphan.attempts} times; launch the job again",
        )
        return None
    # Compare-and-set on attempts, so two deliveries cannot both take the job over.
    if not Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, attempts=orphan.attempts).update(
        worker=worker, attempts=orphan.attempts + 1, heartbeat_at=now
    ):
        return None
    log.warning("job %s: taking over from %s (attempt %s)", job_id, orphan.worker, orphan.attempts + 1)
    return Job.objects.select_related("dataset", "teacher").get(pk=job_id)


def is_stale(job: Job, now=None) -> bool:
    """The job's worker has not shown a sign of life for DISTILLERY_STALE_AFTER seconds."""
    last = job.heartbeat_at or job.started_at
    return last is not None and ((now or timezone.now()) - last).total_seconds() > settings.DISTILLERY_STALE_AFTER


def heartbeat(job_id: int) -> None:
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())


def requeue_stale_jobs() -> list[int]:
    """Send the task of every running job whose worker went silent again; a live worker takes it over."""
    from .tasks import run_job

    cutoff = timezone.now() - timedelta(seconds=settings.DISTILLERY_STALE_AFTER)
    stale = Job.objects.filter(status=Job.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    requeued = []
    for job in stale:
        task_id = uuid.uuid4().hex
        Job.objects.filter(pk=job.pk).update(celery_task_id=task_id)
        queue = "cpu" if job.kind == Job.Kind.CLASSIFY else "gpu"
        run_job.apply_async((job.pk,), task_id=task_id, queue=queue)
        log.warning("job %s: no heartbeat from %s since %s; sent it again", job.pk, job.worker, job.heartbeat_at)
        requeued.append(job.pk)
    return requeued


def checkpoint_dir(job: Job) -> Path:
    return Path(settings.DISTILLERY_CHECKPOINT_DIR) / f"job-{job.pk}"


def jobs_ahead(job: Job) -> int | None:
    """How many queued jobs (anyone's) wait before a queued one on its Celery queue; None if it is not queued."""
    if job.status != Job.Status.QUEUED:
        return None
    same_queue = [Job.Kind.CLASSIFY] if job.kind == Job.Kind.CLASSIFY else [Job.Kind.FINETUNE, Job.Kind.DISTILL]
    return Job.objects.filter(status=Job.Status.QUEUED, kind__in=same_queue, pk__lt=job.pk).count()


def request_cancel(job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next batch."""
    ended = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    )
    if ended:
        from .tasks import app

        app.control.revoke(job.celery_task_id)
    else:
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    broadcast_status(job)
    if ended:
        _notify(job)
    return job


def cancel_requested(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def finish_job(job: Job, status: str, *, error: str = "", result_model: ModelRecord | None = None) -> None:
    """Record a job's end state. Only a running job can finish, so a late call cannot undo a cancel."""
    ended = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=status,
        error=error[:5000],
        result_model=result_model,
        finished_at=timezone.now(),
        phase="",
        progress=1.0 if status == Job.Status.SUCCEEDED else F("progress"),
    )
    job.refresh_from_db()
    broadcast_status(job)
    if ended:
        _notify(job)


# --- webhooks ---------------------------------------------------------------------------------------


class WebhookUnavailable(Exception):
    """The webhook's server could not be reached or answered 5xx: worth trying again later."""


def _notify(job: Job) -> None:
    """Queue the POST to the job's webhook once its end is committed."""
    if job.webhook_url:
        from .tasks import notify_webhook

        transaction.on_commit(lambda: notify_webhook.delay(job.pk))


def webhook_body(job: Job) -> bytes:
    """The job's final status message (as the websocket sends it) with its model's test accuracy."""
    event = job.to_event()
    record = job.result_model
    event["test_accuracy"] = record.metrics.get("test/accuracy") if record is not None else None
    return json.dumps(event, sort_keys=True).encode()


def webhook_signature(job: Job, body: bytes) -> str:
    """sha256=HMAC-SHA256(body) keyed with the owner's API token, which the receiver knows to check it."""
    from rest_framework.authtoken.models import Token

    key, _ = Token.objects.get_or_create(user=job.owner)
    return "sha256=" + hmac.new(key.key.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(job_id: int, *, timeout: float = 10.0) -> int | None:
    """POST a finished job's status to its webhook_url; the HTTP status (None when the job or its URL is gone).
    A 4xx is the receiver's final answer; a 5xx or a network error raises WebhookUnavailable (Celery retries)."""
    import urllib.error
    import urllib.request

    job = Job.objects.select_related("result_model", "owner").filter(pk=job_id).first()
    if job is None or not job.webhook_url:
        return None
    body = webhook_body(job)
    request = urllib.request.Request(job.webhook_url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "Distillery", "X-Distillery-Event": "job.finished",
        "X-Distillery-Signature": webhook_signature(job, body),
    })  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise WebhookUnavailable(f"{job.webhook_url} answered {exc.code}") from None
        log.warning("job %s: webhook %s refused it with %s", job_id, job.webhook_url, exc.code)
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookUnavailable(f"{job.webhook_url}: {exc}") from None


def delete_job(job: Job) -> None:
    """Delete a finished job with its metric points, its files (a file classification's input and CSV) and
    any checkpoint left behind. The model it trained stays."""
    files = [f.name for f in (job.input_file, job.output_file) if f]
    checkpoint = checkpoint_dir(job)
    # Finished is for good (only a running job is ever requeued), so the filter is the whole guard.
    deleted, _ = Job.objects.filter(pk=job.pk, status__in=Job.FINISHED).delete()
    if not deleted:
        raise ValidationError({"status": f"the job is {job.status}: cancel it first, then delete it"})

    def gone() -> None:
        for name in files:
            default_storage.delete(name)
        shutil.rmtree(checkpoint, ignore_errors=True)

    transaction.on_commit(gone)


def set_progress(job_id: int, progress: float) -> None:
    Job.objects.filter(pk=job_id).update(progress=progress)


def set_phase(job_id: int, phase: str) -> None:
    """Record what a running job is doing now and tell its pages."""
    if Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(phase=phase):
        broadcast_status(Job.objects.get(pk=job_id))


def record_metric(job: Job, *, seq: int, step: int, kind: str, values: dict) -> MetricPoint:
    """Save a metric point, then push it to every open browser on the job."""
    point = MetricPoint(job=job, seq=seq, step=step, kind=kind, values=values)
    record_metrics(job, [point])
    return point


def record_metrics(job: Job, points: list[MetricPoint]) -> None:
    """Save the job's metric points in one INSERT, then push each, in order, to every open browser on it."""
    MetricPoint.objects.bulk_create(points)
    _group_send(job_group(job.pk), *(point.to_event() for point in points))


# --- models -----------------------------------------------------------------------------------------


def register_model(job: Job, result) -> ModelRecord:
    """Save a finished job's model folder through the storage API and create its record."""
    record = ModelRecord(
        owner=job.owner,
        name=f"{job.get_kind_display().lower()}-{job.pk}",
        kind=job.kind,
        base_model=job.base_model,
        teacher=job.teacher,
        dataset=job.dataset,
        params=job.params,
        metrics=result.metrics,
        label_names=result.label_names,
        num_parameters=result.num_parameters,
        size_bytes=result.size_bytes,
        serving_precision=serving_precision_for(result.metrics),
    )
    return _store(record, Path(result.output_dir))


def import_model(
    owner, folder: str | Path, *, name: str = "", promote_it: bool = False, validation_file: str | None = None
) -> ModelRecord:
    """Register a trained model folder made elsewhere (mlcore or any HF sequence-classification folder).

    With validation_file (labelled rows it did not train on), int8 is measured against fp32 on them and the
    serving precision chosen as for a trained model."""
    from mlcore.artifacts import folder_size
    from mlcore.loading import load_trained

    folder = Path(folder)
    model, _, label_names, manifest = load_trained(folder)  # raises ModelLoadError with the reason
    record = ModelRecord(
        owner=owner,
        name=name or folder.name,
        kind=ModelRecord.Kind.IMPORTED,
        base_model=str(manifest.get("base_model") or ""),
        params=manifest.get("config") or {},
        metrics=manifest.get("metrics") or {},
        label_names=label_names,
        num_parameters=sum(p.numel() for p in model.parameters()),
        size_bytes=folder_size(folder),
    )
    if validation_file:
        from mlcore.quantize import compare_precisions

        from . import serving

        rows, _ = read_table(validation_file)
        report = compare_precisions(folder, rows, runtime=serving.runtime())
        record.metrics = {**record.metrics, "int8": report}
        record.serving_precision = serving_precision_for(record.metrics)
    record = _store(record, folder)
    return promote(record) if promote_it else record


def import_model_archive(owner, upload, *, name: str = "") -> tuple[ModelRecord, list[str]]:
    """Register an uploaded zip of a model folder (a Distillery download, or any HF sequence-classification
    folder with safetensors weights): unpacked safely, loaded once to check it, stored as an imported record.
    Returns the record and the archive's files it left out (see mlcore.artifacts.unpack_model_archive)."""
    from mlcore.artifacts import ArchiveError, unpack_model_archive
    from mlcore.loading import ModelLoadError

    limit_mb = settings.DISTILLERY_MAX_MODEL_UPLOAD_MB
    if upload.size > limit_mb * 2**20:
        raise ValidationError({"file": f"the file is {upload.size / 2**20:.1f} MB; the limit is {limit_mb} MB"})
    with _local_upload(upload) as path, tempfile.TemporaryDirectory(prefix="distillery-import-") as tmp:
        folder = Path(tmp) / "model"
        try:
            skipped = unpack_model_archive(path, folder, max_bytes=limit_mb * 2**20)
            record = import_model(owner, folder, name=name or Path(upload.name).stem)
        except (ArchiveError, ModelLoadError) as exc:  # without the server's temporary path
            message = str(exc).replace(f"model {str(folder)!r}", "the archive's model")
            raise ValidationError({"file": message}) from None
    return record, skipped


def delete_model(record: ModelRecord) -> None:
    """Delete a model record; its files go once the deletion commits (jobs.signals). A promoted model, or one
    that jobs name as their teacher or classifier, is refused with the reason."""
    if record.is_promoted:
        raise ValidationError("the model is promoted: it answers your classify requests; promote another first")
    users = list(Job.objects.filter(Q(teacher=record) | Q(model=record)).order_by("pk").values_list("pk", flat=True))
    if users:
        ids = ", ".join(f"#{pk}" for pk in users)
        raise ValidationError(f"jobs use this model ({ids}); delete them first")
    try:
        record.delete()
    except ProtectedError:  # a job named it since the check
        raise ValidationError("jobs use this model; delete them first") from None


def model_archive(record: ModelRecord) -> tuple[str, Iterator[bytes]]:
    """A zip of the model's folder, streamed from storage: the HF weights, tokenizer and config (load it with
    `from_pretrained`), distillery.json, any shipped ONNX export, and a README on how to use it. Returns the
    file name and the archive's chunks."""
    from mlcore.artifacts import zip_chunks

    folder = f"{slugify(record.name) or 'model'}-{record.pk}"
    readme = _archive_readme(record, folder).encode()
    entries = [(f"{folder}/README.md", lambda: io.BytesIO(readme), len(readme))]
    for name in record.artifact_files:
        stored = f"{record.artifact_prefix}/{name}"
        entries.append((f"{folder}/{name}", partial(default_storage.open, stored, "rb"), default_storage.size(stored)))
    return f"{folder}.zip", zip_chunks(entries)


def _archive_readme(record: ModelRecord, folder: str) -> str:
    params = record.params or {}
    truncation = params.get("truncation", "head")
    cut = (
        "keep the first quarter of the token budget from the start of a text and the rest from its end "
        "(`truncation: head_tail`), as Distillery's classify does"
        if truncation == "head_tail" else "keep the first tokens of a text"
    )
    accuracy = record.test_accuracy
    lines = [
        f"# {record.name}",
        "",
        f"A {record.get_kind_display().lower()} text classifier exported from Distillery (model #{record.pk}).",
        "",
        f"- labels: {', '.join(record.label_names)}",
        f"- base model: {record.base_model or '-'}",
        f"- parameters: {record.num_parameters:,}",
        f"- test accuracy: {accuracy:.4f}" if accuracy is not None else "- test accuracy: -",
        f"- trained at max_length {params.get('max_length', 128)}; to match its results, {cut}",
        "",
        "distillery.json holds its hyperparameters and every metric.",
        "",
        "## Use it with transformers",
        "",
        "```python",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline",
        "",
        f'classify = pipeline("text-classification", model="{folder}", tokenizer="{folder}", truncation=True,',
        f"                    max_length={params.get('max_length', 128)})",
        'print(classify("A wonderful film."))',
        "```",
    ]
    onnx = [name for name in record.artifact_files if name.endswith(".onnx")]
    if onnx:
        lines += [
            "",
            "## Or with ONNX Runtime",
            "",
            f"`{onnx[0]}` is the export Distillery serves (inputs `input_ids`, `attention_mask`; output: logits).",
        ]
    return "\n".join(lines) + "\n"


def _store(record: ModelRecord, folder: Path) -> ModelRecord:
    """Copy a model folder's files into storage under the record's prefix, then save the record."""
    saved = []
    try:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                with path.open("rb") as fh:
                    default_storage.save(f"{record.artifact_prefix}/{path.name}", File(fh))
                saved.append(path.name)
        record.artifact_files = saved
        record.save()
    except Exception:
        for name in saved:
            default_storage.delete(f"{record.artifact_prefix}/{name}")
        raise
    return record


def delete_model_files(record: ModelRecord) -> None:
    """Remove a deleted record's files: those in storage, and this machine's derived copies (the local copy of
    a remote storage's files and the ONNX exports in DISTILLERY_MODEL_CACHE). Files already gone are skipped."""
    for name in record.artifact_files:
        default_storage.delete(f"{record.artifact_prefix}/{name}")
    copy = _local_copy_dir(record)
    for folder in (copy, copy.with_suffix(".partial"), onnx_exports_dir(record)):
        shutil.rmtree(folder, ignore_errors=True)


def _local_copy_dir(record: ModelRecord) -> Path:
    """Where model_dir() copies a record's files when storage has no local path."""
    return Path(settings.DISTILLERY_MODEL_CACHE) / Path(record.artifact_prefix).name


def onnx_exports_dir(record: ModelRecord) -> Path:
    """Where this machine keeps a record's ONNX exports: derived files, beside the cached models, never in the
    stored model's folder."""
    return Path(settings.DISTILLERY_MODEL_CACHE) / "onnx" / Path(record.artifact_prefix).name


def serving_precision_for(metrics: dict) -> str:
    """int8 when the quantised model measured faster and lost at most DISTILLERY_INT8_MAX_DROP accuracy points
    on the validation rows (metrics from mlcore.quantize.compare_precisions); fp32 otherwise."""
    q = metrics.get("int8") or {}
    if not q or q.get("accuracy_drop_points") is None:
        return ModelRecord.Precision.FP32
    ok = q["accuracy_drop_points"] <= settings.DISTILLERY_INT8_MAX_DROP and q.get("speedup", 0) > 1.0
    return ModelRecord.Precision.INT8 if ok else ModelRecord.Precision.FP32


def model_dir(record: ModelRecord) -> Path:
    """A local folder holding the model's files: storage's own folder, or a cached copy of it."""
    try:
        return Path(default_storage.path(record.artifact_prefix))
    except NotImplementedError:
        pass
    target = _local_copy_dir(record)
    if not (target / ".complete").exists():
        partial = target.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name in record.artifact_files:
            with default_storage.open(f"{record.artifact_prefix}/{name}", "rb") as src:
                (partial / name).write_bytes(src.read())
        (partial / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


def promote(record: ModelRecord) -> ModelRecord:
    """Make this the model that serves its owner's classify requests."""
    with transaction.atomic():
        ModelRecord.objects.filter(owner=record.owner, is_promoted=True).exclude(pk=record.pk).update(
            is_promoted=False
        )
        ModelRecord.objects.filter(pk=record.pk).update(is_promoted=True, promoted_at=timezone.now())
    from . import fastpath

    fastpath.forget(record.owner_id)  # this process serves the new model from its next request
    record.refresh_from_db()
    return record


def promoted_model(user) -> ModelRecord | None:
    return ModelRecord.objects.filter(owner=user, is_promoted=True).first()


# --- websockets -------------------------------------------------------------------------------------


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


def user_jobs_group(user_id: int) -> str:
    return f"user-{user_id}-jobs"


def broadcast_status(job: Job) -> None:
    event = job.to_event()
    _group_send(job_group(job.pk), event)
    _group_send(user_jobs_group(job.owner_id), event)


def _group_send(group: str, *events: dict) -> None:
    """Send the events to the group, in order, in one trip into async code (each trip costs about 0.5 ms)."""
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        for event in events:
            await layer.group_send(group, {"type": "job.event", "event": event})

    try:
        async_to_sync(send_all)()
    except Exception:  # the rows are saved; a Redis hiccup must not fail the job
        log.warning("could not broadcast to %s", group, exc_info=True)
