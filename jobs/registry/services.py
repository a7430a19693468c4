"""The model registry: a trained model registered, a model folder or zip imported, promoted to serve its
owner's classify requests, deleted.

Runs in: the workers (register_model after training) and the web process (the rest; manage.py import_model).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from mlcore.data import read_table
from mlcore.modelcheck import ModelCheckError, check_model_folder, unpack_archive

from .. import offload
from ..files import check_upload_size, local_upload, upload_limit_bytes
from ..models import Job, ModelRecord
from ..quota import check_quota
from . import storage
from .precision import serving_precision_for, serving_runtime


def register_model(job: Job, result) -> ModelRecord:
    """Save a finished job's model folder through the storage API and create its record. Its size counts
    towards the owner's storage quota but is never refused by it: the job has run, and a user past the quota
    cannot launch another (training.launch)."""
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
        temperature=result.temperature,
    )
    return storage.store(record, Path(result.output_dir))


def import_model(
    owner, folder: str | Path, *, name: str = "", promote_it: bool = False, validation_file: str | None = None
) -> ModelRecord:
    """Register a trained model folder made elsewhere (mlcore or any HF sequence-classification folder).

    1. load it strictly in a helper process (jobs.offload: seconds of CPU the web process's requests keep): its
       distillery.json and label names checked against the model's config (mlcore.artifacts.check_manifest),
       a ModelCheckError naming the field that fails;
    2. check the owner's storage quota for the folder's size (a ValidationError on `file`);
    3. with validation_file (labelled rows it did not train on), measure int8 against fp32 on them and choose
       the serving precision as for a trained model;
    4. store its files and save the record."""
    folder = Path(folder)
    checked = offload.run(check_model_folder, folder)  # ModelCheckError with the reason
    check_quota(owner, checked.size_bytes)
    manifest = checked.manifest
    record = ModelRecord(
        owner=owner,
        name=name or folder.name,
        kind=ModelRecord.Kind.IMPORTED,
        base_model=str(manifest.get("base_model") or ""),
        params=manifest.get("config") or {},
        metrics=manifest.get("metrics") or {},
        label_names=checked.label_names,
        num_parameters=checked.num_parameters,
        size_bytes=checked.size_bytes,
        temperature=manifest.get("temperature", 1.0),  # in range: check_model_folder checked it
    )
    if validation_file:
        from mlcore.precisions import compare_precisions  # imports torch: an operator's command, not the web

        rows, _ = read_table(validation_file, max_bytes=upload_limit_bytes())
        report = compare_precisions(folder, rows, runtime=serving_runtime())
        record.metrics = {**record.metrics, "int8": report}
        record.serving_precision = serving_precision_for(record.metrics)
    record = storage.store(record, folder)
    return promote(record) if promote_it else record


def import_model_archive(owner, upload, *, name: str = "") -> tuple[ModelRecord, list[str]]:
    """Register an uploaded zip of a model folder (a Distillery download, or any HF sequence-classification
    folder with safetensors weights): unpacked safely in a helper process (each file capped by its kind and its
    compression ratio, mlcore.artifacts.unpack_model_archive), its size held to the quota, then imported as
    import_model does (strict load, quota, store). Returns the record and the archive's files it left out.
    Every refusal is a ValidationError on `file`."""
    limit_mb = settings.DISTILLERY_MAX_MODEL_UPLOAD_MB
    check_upload_size(upload, limit_mb=limit_mb)
    with local_upload(upload) as path, tempfile.TemporaryDirectory(prefix="distillery-import-") as tmp:
        folder = Path(tmp) / "model"
        try:
            skipped, size = offload.run(unpack_archive, path, folder, max_bytes=limit_mb * 2**20)
            check_quota(owner, size)  # before the model is loaded
            record = import_model(owner, folder, name=name or Path(upload.name).stem)
        except ModelCheckError as exc:  # without the server's temporary path
            message = str(exc).replace(f"model {str(folder)!r}", "the archive's model")
            raise ValidationError({"file": message}) from None
        except offload.HelperLost as exc:
            raise ValidationError({"file": f"the model could not be checked to the end: {exc}; try again"}) from None
    return record, skipped


def delete_model(record: ModelRecord) -> None:
    """Delete a model record; its files go once the deletion commits (jobs.signals). A promoted model, or one
    that jobs name as their teacher, classifier or base, is refused with the reason."""
    if record.is_promoted:
        raise ValidationError("the model is promoted: it answers your classify requests; promote another first")
    using = Job.objects.filter(Q(teacher=record) | Q(model=record) | Q(base_record=record))
    users = list(using.order_by("pk").values_list("pk", flat=True))
    if users:
        ids = ", ".join(f"#{pk}" for pk in users)
        raise ValidationError(f"jobs use this model ({ids}); delete them first")
    try:
        record.delete()
    except ProtectedError:  # a job named it since the check
        raise ValidationError("jobs use this model; delete them first") from None


def promote(record: ModelRecord) -> ModelRecord:
    """Make this the model that serves its owner's classify requests. Saved (not a bare UPDATE), so that
    jobs.signals tells this process's classify fast path to look the owner's model up again."""
    with transaction.atomic():
        ModelRecord.objects.filter(owner=record.owner, is_promoted=True).exclude(pk=record.pk).update(
            is_promoted=False
        )
        record.is_promoted, record.promoted_at = True, timezone.now()
        record.save(update_fields=["is_promoted", "promoted_at"])
    return record


def promoted_model(user) -> ModelRecord | None:
    return ModelRecord.objects.filter(owner=user, is_promoted=True).first()
