"""Confident learning finds flipped labels: out-of-fold probabilities from a logistic regression on embeddings,
then cleanlab's per-class thresholds; and the tiny BERT's encoder gives every row an embedding."""

from __future__ import annotations

import numpy as np

from mlcore.label_issues import embed, find_suspects, folds_for, out_of_fold_probabilities

FLIPPED = [4, 30, 77, 130, 171, 250, 299]


def _clusters(seed: int = 0):
    """Three classes of 100 rows in 16 dimensions, each around its own centre, with FLIPPED given the next
    class's label."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (3, 16))
    truth = np.repeat([0, 1, 2], 100)
    features = centres[truth] + rng.normal(0, 1, (300, 16))
    labels = truth.copy()
    labels[FLIPPED] = (labels[FLIPPED] + 1) % 3
    return features, labels.tolist(), truth


def test_the_flipped_rows_are_found_and_nothing_else():
    features, labels, truth = _clusters()
    probabilities = out_of_fold_probabilities(features, labels, 3)
    suspects = find_suspects(labels, probabilities)
    assert sorted(suspects) == FLIPPED
    # Most suspect first: the given label's probability rises down the list.
    confidence = [probabilities[i, labels[i]] for i in suspects]
    assert confidence == sorted(confidence)
    # The class each suspect's probabilities favour is its true one.
    assert all(int(np.argmax(probabilities[i])) == truth[i] for i in suspects)


def test_out_of_fold_probabilities_come_from_fits_that_did_not_see_the_row():
    features, labels, _ = _clusters()
    probabilities = out_of_fold_probabilities(features, labels, 3)
    assert probabilities.shape == (300, 3) and np.allclose(probabilities.sum(axis=1), 1)
    # A fit that saw the flipped rows would give their given label a fair share; out of fold it is near 0.
    assert probabilities[FLIPPED, [labels[i] for i in FLIPPED]].max() < 0.2


def test_folds_shrink_to_the_smallest_class_and_none_below_two_rows():
    assert folds_for([0] * 50 + [1] * 50) == 5
    assert folds_for([0] * 50 + [1] * 3) == 3
    assert folds_for([0] * 50 + [1]) == 0


def test_the_encoder_embeds_each_text_in_input_order(tiny_bert):
    import torch

    texts = ["a good movie", "the worst film of the year , so dull", "fun"]
    vectors = embed(tiny_bert, texts, device=torch.device("cpu"), max_length=32)
    again = embed(tiny_bert, texts[::-1], device=torch.device("cpu"), max_length=32)
    assert vectors.shape == (3, 32)
    np.testing.assert_allclose(vectors, again[::-1], atol=1e-5)
