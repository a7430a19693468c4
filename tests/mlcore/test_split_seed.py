"""split_seed fixes the rows of each split whatever the training seed; without it the seed picks them."""

from __future__ import annotations

from mlcore.config import TrainConfig
from mlcore.data import TextDataset
from mlcore.testing import sentiment_rows
from mlcore.train import make_splits

DATA = TextDataset.from_rows(sentiment_rows(200, seed=0))


def _rows(config) -> dict[str, list[str]]:
    return {name: sorted(split.texts) for name, split in make_splits(DATA, config).items()}


def test_runs_with_other_seeds_split_the_same_rows_under_one_split_seed():
    a, b = _rows(TrainConfig(seed=1, split_seed=7)), _rows(TrainConfig(seed=2, split_seed=7))
    assert a == b and len(a["test"]) == 20
    assert _rows(TrainConfig(seed=7)) == a  # split_seed 7 splits as seed 7 would


def test_without_it_the_seed_picks_the_rows():
    assert _rows(TrainConfig(seed=1))["test"] != _rows(TrainConfig(seed=2))["test"]
    assert TrainConfig().split_seed is None
