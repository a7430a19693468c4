"""Models that cannot be loaded or used fail early with ModelLoadError naming the model."""

from __future__ import annotations

import pytest

from mlcore.config import TrainConfig
from mlcore.inference import Classifier
from mlcore.testing import make_tiny_bert
from mlcore.train import ModelLoadError, finetune

from .conftest import TINY_TRAINING


def test_a_missing_base_model_folder_is_a_model_load_error(sentiment, tmp_path):
    with pytest.raises(ModelLoadError, match=r"^could not load model './no-such-model': no model folder at"):
        finetune(sentiment, "./no-such-model", tmp_path / "out", TrainConfig(**TINY_TRAINING))
    assert not (tmp_path / "out").exists()


def test_a_max_length_beyond_the_models_positions_is_refused_before_training(sentiment, tmp_path):
    short = make_tiny_bert(tmp_path / "short", max_position=16)
    with pytest.raises(ModelLoadError, match=r"max_length 32 is more than this model supports \(16 tokens\)"):
        finetune(sentiment, str(short), tmp_path / "out", TrainConfig(**TINY_TRAINING))


def test_loading_a_folder_that_is_not_a_model_is_a_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        Classifier.load(tmp_path)


def test_model_load_errors_are_value_errors():
    assert issubclass(ModelLoadError, ValueError)
