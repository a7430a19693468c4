"""split_dataset makes deterministic, stratified train/valid/test splits."""

from __future__ import annotations

from mlcore.data import TextDataset, split_dataset


def dataset(n_pos: int, n_neg: int) -> TextDataset:
    rows = [(f"pos {i}", "pos") for i in range(n_pos)] + [(f"neg {i}", "neg") for i in range(n_neg)]
    return TextDataset.from_rows(rows)


def test_split_sizes_follow_the_fractions():
    train, valid, test = split_dataset(dataset(60, 40), valid_fraction=0.1, test_fraction=0.2, seed=1)
    assert (len(train), len(valid), len(test)) == (70, 10, 20)


def test_every_row_lands_in_exactly_one_split():
    ds = dataset(37, 21)
    splits = split_dataset(ds, valid_fraction=0.15, test_fraction=0.15, seed=3)
    texts = [t for split in splits for t in split.texts]
    assert sorted(texts) == sorted(ds.texts)


def test_splits_keep_the_label_proportions():
    train, valid, test = split_dataset(dataset(60, 40), valid_fraction=0.1, test_fraction=0.2, seed=5)
    assert valid.label_counts() == {"neg": 4, "pos": 6}
    assert test.label_counts() == {"neg": 8, "pos": 12}
    assert train.label_counts() == {"neg": 28, "pos": 42}


def test_the_same_seed_gives_the_same_splits_and_another_seed_does_not():
    ds = dataset(50, 50)
    first = split_dataset(ds, valid_fraction=0.1, test_fraction=0.1, seed=42)
    again = split_dataset(ds, valid_fraction=0.1, test_fraction=0.1, seed=42)
    other = split_dataset(ds, valid_fraction=0.1, test_fraction=0.1, seed=43)
    assert [s.texts for s in first] == [s.texts for s in again]
    assert first[2].texts != other[2].texts


def test_the_split_depends_on_label_names_not_label_ids():
    ds = dataset(20, 13)
    # The same rows with the label ids swapped, as a teacher with labels in another order would number them.
    renumbered = TextDataset(ds.texts, [1 - y for y in ds.labels], list(reversed(ds.label_names)))
    a = split_dataset(ds, valid_fraction=0.2, test_fraction=0.2, seed=7)
    b = split_dataset(renumbered, valid_fraction=0.2, test_fraction=0.2, seed=7)
    assert [s.texts for s in a] == [s.texts for s in b]


def test_tiny_datasets_still_get_one_row_in_each_requested_split():
    train, valid, test = split_dataset(dataset(2, 1), valid_fraction=0.1, test_fraction=0.1, seed=0)
    assert (len(train), len(valid), len(test)) == (1, 1, 1)


def test_a_zero_fraction_gives_an_empty_split():
    train, valid, test = split_dataset(dataset(5, 5), valid_fraction=0.0, test_fraction=0.2, seed=0)
    assert (len(train), len(valid), len(test)) == (8, 0, 2)


def test_subsets_keep_all_label_names():
    ds = dataset(3, 3)
    only_pos = ds.subset(i for i, y in enumerate(ds.labels) if ds.label_names[y] == "pos")
    assert only_pos.label_names == ["neg", "pos"]
    assert only_pos.label_counts() == {"neg": 0, "pos": 3}
