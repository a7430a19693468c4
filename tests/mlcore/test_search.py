"""Random search draws each parameter from its distribution, the same trials for the same seed."""

from __future__ import annotations

import math

import pytest

from mlcore.search import SearchError, sample

SPACE = {
    "learning_rate": {"log_uniform": [1e-5, 1e-3]},
    "warmup_ratio": {"uniform": [0.0, 0.1]},
    "epochs": {"int": [1, 3]},
    "truncation": {"choice": ["head", "head_tail"]},
}


def test_every_draw_is_inside_its_distribution_and_a_seed_repeats_them():
    trials = sample(SPACE, 400, seed=3)
    assert trials == sample(SPACE, 400, seed=3) and trials != sample(SPACE, 400, seed=4)
    assert [list(t) for t in trials[:1]] == [list(SPACE)]  # the space's order
    rates = [t["learning_rate"] for t in trials]
    assert all(1e-5 <= r <= 1e-3 for r in rates)
    # Log-uniform: about half the draws under the geometric middle (1e-4), not a tenth as uniform would give.
    assert 0.4 < sum(r < 1e-4 for r in rates) / len(rates) < 0.6
    assert all(0.0 <= t["warmup_ratio"] <= 0.1 for t in trials)
    assert {t["epochs"] for t in trials} == {1, 2, 3} and {t["truncation"] for t in trials} == {"head", "head_tail"}
    assert all(float(f"{r:.4g}") == r for r in rates)  # four significant digits, for people to read


@pytest.mark.parametrize(
    ("space", "trials", "message"),
    [
        ({}, 4, "give a space"),
        ({"lr": {"normal": [0, 1]}}, 4, "lr: unknown distribution 'normal'"),
        ({"lr": {"uniform": [1, 1]}}, 4, "lr: uniform needs [low, high] with low < high"),
        ({"lr": {"log_uniform": [0, 1]}}, 4, "lr: log_uniform needs positive bounds"),
        ({"epochs": {"int": [1, 2.5]}}, 4, "epochs: int needs whole-number bounds"),
        ({"x": {"choice": []}}, 4, "x: choice needs a list of values"),
        ({"x": {"uniform": [0, 1], "int": [0, 1]}}, 4, "x: give one distribution"),
        ({"x": {"uniform": [0, math.inf]}}, 4, "x: uniform needs [low, high]"),
        ({"x": {"uniform": [0, 1]}}, 0, "trials must be a whole number of at least 1"),
    ],
)
def test_a_space_that_cannot_be_sampled_is_named(space, trials, message):
    with pytest.raises(SearchError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        sample(space, trials)
