"""A trained model keeps each test row's prediction from the pass that made its confusion matrix, and they are
what the saved model answers for those texts."""

from __future__ import annotations

import pytest

from mlcore.config import TrainConfig
from mlcore.data import TextDataset
from mlcore.inference import Classifier
from mlcore.testing import sentiment_rows
from mlcore.train import finetune, make_splits, split_indices
from tests.conftest import FAST_PARAMS


def _data() -> TextDataset:
    rows = sentiment_rows(160)
    names = sorted({label for _, label in rows})
    return TextDataset([t for t, _ in rows], [names.index(label) for _, label in rows], names)


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    data = _data()
    config = TrainConfig(**(FAST_PARAMS | {"max_length": 10, "epochs": 2}))
    out = tmp_path_factory.mktemp("rows-model")
    return data, config, out, finetune(data, str(tiny_bert), out, config)


def test_it_keeps_one_prediction_per_test_row_at_its_position_in_the_dataset(trained):
    data, config, _, result = trained
    positions = split_indices(data, config)["test"]
    rows = result.test_rows
    assert [r["row"] for r in rows] == positions
    assert [r["text"] for r in rows] == [data.texts[i] for i in positions]
    assert [r["label"] for r in rows] == [data.labels[i] for i in positions]
    assert [r["text"] for r in rows] == make_splits(data, config)["test"].texts


def test_its_cells_are_the_confusion_matrix_of_the_same_pass(trained):
    _, _, _, result = trained
    matrix = [[0, 0], [0, 0]]
    for r in result.test_rows:
        matrix[r["label"]][r["predicted"]] += 1
    assert matrix == result.metrics["test/report"]["confusion_matrix"]


def test_the_stored_predictions_are_the_saved_models_classify_answers(trained):
    _, _, out, result = trained
    answers = Classifier.load(out).predict([r["text"] for r in result.test_rows])
    for row, answer in zip(result.test_rows, answers, strict=True):
        assert result.label_names[row["predicted"]] == answer.label
        assert row["probabilities"] == pytest.approx(list(answer.probabilities.values()), abs=1e-4)
        assert row["truncated"] == answer.truncated
    assert any(r["truncated"] for r in result.test_rows) and not all(r["truncated"] for r in result.test_rows)


def test_a_given_test_set_keeps_its_own_positions_under_the_cap(tiny_bert):
    data = _data()
    test = data.subset(range(100, 160))
    config = TrainConfig(**(FAST_PARAMS | {"max_eval_samples": 10}))
    positions = split_indices(data, config, test)["test"]
    assert len(positions) == 10 and len(set(positions)) == 10
    assert make_splits(data, config, test)["test"].texts == [test.texts[i] for i in positions]


def test_a_student_keeps_its_test_rows_on_the_same_positions_as_its_teacher(distilled, finetuned, sentiment):
    student, teacher = distilled.result.test_rows, finetuned.result.test_rows
    positions = split_indices(sentiment, distilled.config)["test"]
    assert [r["row"] for r in student] == [r["row"] for r in teacher] == positions
    matrix = [[0, 0], [0, 0]]
    for r in student:
        matrix[r["label"]][r["predicted"]] += 1
    assert matrix == distilled.result.metrics["test/report"]["confusion_matrix"]
