"""ONNX Runtime serving (mlcore.onnxrt): the exported model gives PyTorch's answers, int8 stays close, the
export is made once and reused, and the micro-batching engine serves it."""

from __future__ import annotations

import os

import pytest
import torch

from mlcore import onnxrt
from mlcore.batching import pad
from mlcore.encoding import encode
from mlcore.inference import Classifier
from mlcore.precisions import compare_precisions
from mlcore.serving import BatchingEngine
from mlcore.testing import sentiment_rows

pytestmark = pytest.mark.skipif(not onnxrt.available(), reason="onnxruntime is not installed")

TEXTS = ["great good film", "awful bad movie", "good", "bad plot and awful acting, a long and dull film", "meh"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


def test_onnx_gives_the_logits_of_pytorch_for_padded_batches(tiny_model_dir, exports):
    torch_model = Classifier.load(tiny_model_dir)
    onnx_model = Classifier.load(tiny_model_dir, runtime="onnx", onnx_dir=exports)
    assert onnx_model.runtime == "onnx" and (exports / "model.onnx").is_file()
    # Batches of different sizes and lengths, padded: the exported graph has no shape baked in.
    for texts in (TEXTS[:1], TEXTS, TEXTS[2:4]):
        rows, _ = encode(torch_model.tokenizer, texts, torch_model.max_length)
        inputs = pad(rows, torch_model.tokenizer.pad_token_id or 0)
        with torch.inference_mode():
            expected = torch_model.model(**inputs).logits
        got = onnx_model.model(**inputs).logits
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-4), (got, expected)
    # predict() takes its own path on ONNX Runtime (NumPy arrays in, NumPy softmax out): the same answers.
    ours, theirs = onnx_model.predict(TEXTS), torch_model.predict(TEXTS)
    assert [p.label for p in ours] == [p.label for p in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert list(a.probabilities) == list(b.probabilities)
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
        assert sum(a.probabilities.values()) == pytest.approx(1.0, abs=1e-9)
    assert [p.truncated for p in ours] == [p.truncated for p in theirs]
    assert onnx_model.label_names == torch_model.label_names and onnx_model.max_length == torch_model.max_length


def test_the_export_is_made_once_and_int8_stays_close(tiny_model_dir, exports):
    Classifier.load(tiny_model_dir, runtime="onnx", onnx_dir=exports)
    first = (exports / "model.onnx").stat().st_mtime_ns
    int8 = Classifier.load(tiny_model_dir, runtime="onnx", precision="int8", onnx_dir=exports)
    assert (exports / "model.onnx").stat().st_mtime_ns == first  # reused, not exported again
    assert (exports / "model-int8.onnx").stat().st_size < (exports / "model.onnx").stat().st_size
    fp32 = Classifier.load(tiny_model_dir, runtime="onnx", onnx_dir=exports)
    for a, b in zip(int8.predict(TEXTS), fp32.predict(TEXTS), strict=True):
        assert abs(a.probabilities["positive"] - b.probabilities["positive"]) < 0.1
    assert not [p for p in os.listdir(exports) if p.endswith(".tmp")]


def test_the_default_export_goes_beside_the_model(tiny_bert, tmp_path):
    import shutil

    folder = shutil.copytree(tiny_bert, tmp_path / "model")
    Classifier.load(folder, runtime="onnx")
    assert (folder / onnxrt.EXPORT_DIR / "model.onnx").is_file()


def test_the_engine_serves_an_onnx_model(tiny_model_dir, exports):
    classifier = Classifier.load(tiny_model_dir, runtime="onnx", onnx_dir=exports)
    engine = BatchingEngine(classifier, max_batch=4, max_wait_ms=0)
    try:
        futures = [engine.submit([text]) for text in TEXTS]
        answers = [f.result(timeout=30)[0].label for f in futures]
    finally:
        engine.close()
    assert answers == [p.label for p in classifier.predict(TEXTS)]


def test_compare_precisions_measures_the_onnx_runtime_without_writing_beside_the_model(tiny_model_dir):
    from mlcore.data import TextDataset

    rows = sentiment_rows(40)
    names = sorted({label for _, label in rows})
    data = TextDataset([t for t, _ in rows], [names.index(label) for _, label in rows], names)
    before = sorted(p.name for p in tiny_model_dir.iterdir())
    report = compare_precisions(tiny_model_dir, data, runtime="onnx")
    assert report["runtime"] == "onnx" and report["rows"] == 40
    assert 0 <= report["int8_accuracy"] <= 1 and report["speedup"] > 0
    assert sorted(p.name for p in tiny_model_dir.iterdir()) == before


def test_bad_runtimes_are_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="runtime must be one of torch, onnx"):
        Classifier.load(tiny_model_dir, runtime="tensorrt")
