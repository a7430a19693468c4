"""`manage.py import_model FOLDER --owner USER` registers a model folder made elsewhere as that user's imported
model: its files go to storage, it prints the new record's id, and --promote, --precision and
--validation-file set how it serves. A user or a folder that is not there is a CommandError that says which."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from jobs.models import ModelRecord
from jobs.registry import services as registry
from jobs.registry.precision import serving_precision_for
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db


def _import(folder, **options) -> ModelRecord:
    """Run the command; the record whose id it printed (and nothing else)."""
    out = io.StringIO()
    call_command("import_model", str(folder), stdout=out, **options)
    return ModelRecord.objects.get(pk=int(out.getvalue().strip()))


def test_it_prints_the_id_of_an_imported_record_owned_by_the_user_with_its_files_in_storage(
    user, other_user, tiny_model_dir
):
    before = set(ModelRecord.objects.values_list("pk", flat=True))

    record = _import(tiny_model_dir, owner="alice", name="from-the-lab")

    assert set(ModelRecord.objects.values_list("pk", flat=True)) == before | {record.pk}
    assert (record.owner, record.kind, record.name) == (user, ModelRecord.Kind.IMPORTED, "from-the-lab")
    assert record.label_names == ["negative", "positive"]
    assert (record.serving_precision, record.is_promoted) == (ModelRecord.Precision.FP32, False)
    local = sorted(p.name for p in tiny_model_dir.iterdir() if p.is_file())
    assert "model.safetensors" in record.artifact_files and record.artifact_files == local
    for name in record.artifact_files:
        with default_storage.open(f"{record.artifact_prefix}/{name}", "rb") as stored:
            assert stored.read() == (tiny_model_dir / name).read_bytes()


def test_without_a_name_the_record_is_named_after_the_folder(user, tiny_model_dir):
    assert _import(tiny_model_dir, owner="alice").name == tiny_model_dir.name


def test_promote_makes_it_the_owners_serving_model_and_only_the_owners(user, other_user, tiny_model_dir):
    earlier = registry.promote(_import(tiny_model_dir, owner="alice"))
    bobs = registry.promote(_import(tiny_model_dir, owner="bob"))

    record = _import(tiny_model_dir, owner="alice", promote=True)

    assert record.is_promoted and record.promoted_at is not None
    assert registry.promoted_model(user) == record
    earlier.refresh_from_db()
    bobs.refresh_from_db()
    assert (earlier.is_promoted, bobs.is_promoted) == (False, True)


def test_precision_int8_sets_the_serving_precision(user, tiny_model_dir):
    record = _import(tiny_model_dir, owner="alice", precision="int8")
    assert record.serving_precision == ModelRecord.Precision.INT8
    assert "int8" not in record.metrics  # chosen by hand, not measured


def test_an_unknown_owner_is_an_error_that_names_them_and_stores_nothing(user, tiny_model_dir):
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("import_model", str(tiny_model_dir), owner="ghost", stdout=io.StringIO())
    assert not ModelRecord.objects.exists() and not default_storage.exists("models")


@pytest.mark.parametrize("contents", [{}, {"config.json": b"{not json", "notes.txt": b"hello"}], ids=["empty", "junk"])
def test_a_folder_that_is_not_a_model_is_an_error_that_names_it_and_stores_nothing(user, tmp_path, contents):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    for name, data in contents.items():
        (folder / name).write_bytes(data)

    with pytest.raises(CommandError, match=re.escape(f"could not load model '{folder}'")):
        call_command("import_model", str(folder), owner="alice", stdout=io.StringIO())
    assert not ModelRecord.objects.exists() and not default_storage.exists("models")


def test_a_validation_file_measures_int8_against_fp32_and_picks_the_precision_by_the_rule(
    user, tiny_model_dir, tmp_path, settings
):
    from mlcore.testing import sentiment_rows

    settings.DISTILLERY_SERVING_RUNTIME = "torch"  # the measurement runs on the serving runtime; torch is quick
    validation = tmp_path / "held-out.csv"
    validation.write_bytes(csv_bytes(sentiment_rows(40, seed=7)))

    record = _import(tiny_model_dir, owner="alice", validation_file=str(validation))

    report = record.metrics["int8"]
    assert (report["rows"], report["runtime"]) == (40, "torch")
    assert 0.0 <= report["int8_accuracy"] <= 1.0 and report["fp32_accuracy"] >= 0.9  # the tiny model learnt it
    drop = 100 * (report["fp32_accuracy"] - report["int8_accuracy"])
    assert report["accuracy_drop_points"] == pytest.approx(drop, abs=1e-3)
    assert report["speedup"] > 0
    faster_and_close = report["accuracy_drop_points"] <= settings.DISTILLERY_INT8_MAX_DROP and report["speedup"] > 1
    assert record.serving_precision == ("int8" if faster_and_close else "fp32")
    # The manifest's own metrics are kept beside the measurement.
    assert {k: v for k, v in record.metrics.items() if k != "int8"} == _manifest_metrics(tiny_model_dir)


def test_the_precision_asked_for_wins_over_the_measured_one(user, tiny_model_dir, tmp_path, settings):
    from mlcore.testing import sentiment_rows

    settings.DISTILLERY_SERVING_RUNTIME = "torch"
    settings.DISTILLERY_INT8_MAX_DROP = -100.0  # int8 would have to gain 100 points: the rule alone says fp32
    validation = tmp_path / "held-out.csv"
    validation.write_bytes(csv_bytes(sentiment_rows(20, seed=3)))

    record = _import(tiny_model_dir, owner="alice", validation_file=str(validation), precision="int8")

    assert serving_precision_for(record.metrics) == ModelRecord.Precision.FP32
    assert record.serving_precision == ModelRecord.Precision.INT8


def _manifest_metrics(folder) -> dict:
    return json.loads((folder / "distillery.json").read_text()).get("metrics") or {}
