"""Classifier predicts in input order, flags truncated texts and refuses bad input."""

from __future__ import annotations

import pytest

from mlcore.inference import Classifier

LONG = " ".join(["the movie was great and i loved it"] * 6)  # 48 words, more than 32 tokens


@pytest.fixture(scope="module")
def classifier(finetuned):
    return Classifier.load(finetuned.result.output_dir)


def test_it_reads_labels_and_max_length_from_the_folder(classifier, finetuned):
    assert classifier.label_names == ["negative", "positive"]
    assert classifier.max_length == 32
    assert classifier.model_dir == finetuned.result.output_dir


def test_a_text_longer_than_max_length_is_flagged_as_truncated(classifier):
    long_prediction, short_prediction = classifier.predict([LONG, "great film"])
    assert long_prediction.truncated is True
    assert short_prediction.truncated is False


def test_a_smaller_max_length_can_be_asked_for(finetuned):
    classifier = Classifier.load(finetuned.result.output_dir, max_length=8)
    assert classifier.max_length == 8
    # 6 words + [CLS] + [SEP] fill 8 tokens exactly; a seventh word is cut.
    flags = [
        p.truncated
        for p in classifier.predict(["the movie was really very good", "the movie was really very good fun"])
    ]
    assert flags == [False, True]


def test_batched_predictions_keep_input_order_and_match_one_by_one_predictions(classifier):
    texts = [LONG, "awful", "great film , loved it", "the plot was dull and the acting poor", "fun", "bad bad bad"]
    together = classifier.predict(texts, batch_size=2)
    alone = [classifier.predict([text])[0] for text in texts]
    assert [p.label for p in together] == [p.label for p in alone]
    for batched, single in zip(together, alone, strict=True):
        assert batched.probabilities == pytest.approx(single.probabilities, abs=1e-5)
        assert batched.truncated == single.truncated


def test_probabilities_cover_every_label_and_sum_to_one(classifier):
    (prediction,) = classifier.predict(["wonderful music"])
    assert list(prediction.probabilities) == ["negative", "positive"]
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    assert prediction.probability == prediction.probabilities[prediction.label]


@pytest.mark.parametrize(
    ("texts", "message"), [([], "non-empty list"), ("a text", "non-empty list"), (["ok", 3], "text 1")]
)
def test_bad_input_is_refused(classifier, texts, message):
    with pytest.raises(ValueError, match=message):
        classifier.predict(texts)
