"""A near tie reads as one: a classify answer says when it is a coin flip or uncertain, not only its top label."""

from __future__ import annotations

import pytest

from jobs.serving.classify import certainty


@pytest.mark.parametrize(
    ("probabilities", "level"),
    [
        ({"negative": 0.497, "positive": 0.503}, "coin_flip"),  # 50.3% was shown like 99%
        ({"negative": 0.36, "positive": 0.64}, "uncertain"),
        ({"negative": 0.01, "positive": 0.99}, "clear"),
        ({"a": 0.40, "b": 0.35, "c": 0.25}, "coin_flip"),  # the top two, whatever the number of labels
        ({"only": 1.0}, "clear"),
    ],
)
def test_the_lead_of_the_top_label_over_the_next_says_how_decided_an_answer_is(probabilities, level):
    assert certainty(probabilities)["level"] == level


def test_the_note_names_both_labels_with_their_probabilities():
    note = certainty({"negative": 0.497, "positive": 0.503})["note"]
    assert note == "A coin flip: “positive” (50.3%) against “negative” (49.7%); the model cannot tell."
    assert certainty({"negative": 0.01, "positive": 0.99})["note"] == ""
