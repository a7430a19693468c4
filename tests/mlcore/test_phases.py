"""A run says what it is doing between batches: loading, tokenising, the teacher's pass, each epoch, testing, saving."""

from __future__ import annotations

from mlcore.callbacks import Phase
from mlcore.config import DistillConfig, TrainConfig
from mlcore.distill import distill
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING

TWO_EPOCHS = {**TINY_TRAINING, "epochs": 2}
EPOCHS = [Phase.TRAINING, Phase.VALIDATING] * 2


def test_fine_tuning_reports_its_phases_in_order(tiny_bert, sentiment, tmp_path):
    callback = RecordingCallback()
    finetune(sentiment, str(tiny_bert), tmp_path / "out", TrainConfig(**TWO_EPOCHS), callback)
    assert callback.phases == [Phase.LOADING, Phase.TOKENISING, *EPOCHS, Phase.TESTING, Phase.SAVING]


def test_distillation_reports_the_teacher_pass_before_training(finetuned, sentiment, tmp_path):
    callback = RecordingCallback()
    distill(sentiment, finetuned.result.output_dir, tmp_path / "out", DistillConfig(**TWO_EPOCHS), callback)
    assert callback.phases == [
        Phase.LOADING, Phase.TOKENISING, Phase.TEACHER_LOGITS, *EPOCHS, Phase.TESTING, Phase.SAVING
    ]  # fmt: skip


def test_with_the_hidden_state_loss_there_is_no_teacher_pass(finetuned, sentiment, tmp_path):
    callback = RecordingCallback()
    config = DistillConfig(**TWO_EPOCHS, hidden_loss_weight=1.0)
    distill(sentiment, finetuned.result.output_dir, tmp_path / "out", config, callback)
    assert Phase.TEACHER_LOGITS not in callback.phases and callback.phases[2] == Phase.TRAINING


def test_a_run_without_validation_or_test_rows_trains_and_saves(tiny_bert, sentiment, tmp_path):
    callback = RecordingCallback()
    config = TrainConfig(**{**TWO_EPOCHS, "valid_fraction": 0.0, "test_fraction": 0.0})
    finetune(sentiment, str(tiny_bert), tmp_path / "out", config, callback)
    assert callback.phases == [Phase.LOADING, Phase.TOKENISING, Phase.TRAINING, Phase.TRAINING, Phase.SAVING]
