"""A model folder that ships its ONNX export (mlcore.onnxrt.ship) is served from it without exporting again,
unless its weights changed after shipping."""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from mlcore import onnxrt
from mlcore.inference import Classifier

pytestmark = pytest.mark.skipif(not onnxrt.available(), reason="onnxruntime is not installed")

TEXTS = ["great good film", "awful bad movie", "bad plot and awful acting, a long and dull film"]


@pytest.fixture
def shipping(tiny_model_dir, tmp_path):
    """A copy of the tiny model, its fp32 and int8 exports made in another folder, and an empty cache."""
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    exports = tmp_path / "exports"
    onnxrt.export(model, "int8", exports)
    return model, exports, tmp_path / "cache"


def _no_exporting(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("exported although the folder ships its export")

    monkeypatch.setattr(onnxrt, "_export_fp32", refuse)


def test_a_shipped_export_is_served_without_exporting_or_quantising(shipping, monkeypatch):
    model, exports, cache = shipping
    assert onnxrt.ship(model, ["int8"], exports) == ["model-int8.onnx", "onnx.json"]
    assert (model / "model-int8.onnx").read_bytes() == (exports / "model-int8.onnx").read_bytes()
    assert set(json.loads((model / "onnx.json").read_text())["files"]) == {"int8"}

    _no_exporting(monkeypatch)
    assert onnxrt.export(model, "int8", cache) == model / "model-int8.onnx"
    assert not cache.exists()  # nothing written where the server keeps its own exports
    shipped = Classifier.load(model, runtime="onnx", precision="int8", onnx_dir=cache)
    made_here = Classifier.load(model, runtime="onnx", precision="int8", onnx_dir=exports)
    for a, b in zip(shipped.predict(TEXTS), made_here.predict(TEXTS), strict=True):
        assert a.probabilities == b.probabilities


def test_int8_is_quantised_from_a_shipped_fp32_export(shipping, monkeypatch):
    model, exports, cache = shipping
    onnxrt.ship(model, ["fp32"], exports)
    _no_exporting(monkeypatch)
    assert onnxrt.export(model, "fp32", cache) == model / "model.onnx"
    assert onnxrt.export(model, "int8", cache) == cache / "model-int8.onnx"
    assert not (cache / "model.onnx").exists()


def test_an_export_of_other_weights_is_not_used(shipping):
    model, exports, cache = shipping
    onnxrt.ship(model, ["int8"], exports)
    weights = load_file(model / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 1.0  # the folder's weights replaced after shipping
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})

    assert onnxrt.shipped(model) == {}
    assert onnxrt.export(model, "int8", cache) == cache / "model-int8.onnx"  # exported afresh
    assert (cache / "model.onnx").is_file()


def test_nothing_is_shipped_without_the_export_and_a_broken_sidecar_ships_nothing(shipping):
    model, exports, _ = shipping
    assert onnxrt.ship(model, ["int8"], exports / "missing") == []
    assert not (model / "onnx.json").exists() and not (model / "model-int8.onnx").exists()
    onnxrt.ship(model, ["int8"], exports)
    (model / "onnx.json").write_text("{not json")
    assert onnxrt.shipped(model) == {}


def test_a_failed_copy_leaves_the_folder_as_it_was(shipping, monkeypatch):
    model, exports, _ = shipping
    before = sorted(p.name for p in model.iterdir())

    def disk_full(src, dst):
        open(dst, "wb").write(b"half")  # noqa: SIM115
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnxrt.shutil, "copyfile", disk_full)
    with pytest.raises(OSError, match="No space left"):
        onnxrt.ship(model, ["int8"], exports)
    assert sorted(p.name for p in model.iterdir()) == before
