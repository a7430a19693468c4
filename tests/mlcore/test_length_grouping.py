"""Length-grouped batches cut padding, cover every row once per epoch, and replay exactly from (seed, epoch)."""

from __future__ import annotations

import random

from mlcore.sampling import batch_order, padded_tokens

# Varied lengths, as IMDB's are at max_length 512: 10 to 500 tokens, spread evenly.
_rng = random.Random(1)
LENGTHS = [_rng.randint(10, 500) for _ in range(2000)]


def order(*, group: bool, seed: int = 0, epoch: int = 0, batch_size: int = 16) -> list[list[int]]:
    return batch_order(LENGTHS, batch_size, seed=seed, epoch=epoch, group_by_length=group)


def test_grouping_by_length_needs_less_than_60_percent_of_the_padded_tokens_of_random_batches():
    grouped, shuffled = padded_tokens(order(group=True), LENGTHS), padded_tokens(order(group=False), LENGTHS)
    real = sum(LENGTHS)
    # Random batches of 16 pad nearly everything to ~470 tokens; grouped ones to within a few tokens of real.
    assert grouped / shuffled < 0.6
    assert grouped < 1.03 * real
    assert shuffled > 1.7 * real


def test_every_row_appears_exactly_once_per_epoch_in_the_same_number_of_batches():
    for group in (True, False):
        batches = order(group=group, batch_size=16)
        assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
        assert len(batches) == 125  # 2000 / 16
    odd = batch_order(LENGTHS[:1001], 16, seed=0, epoch=0, group_by_length=True)
    assert len(odd) == 63 and sorted(map(len, odd))[:2] == [9, 16]  # one short batch, like random batching


def test_batches_hold_rows_of_similar_length_but_arrive_in_shuffled_order():
    batches = order(group=True)
    spreads = [max(LENGTHS[i] for i in b) - min(LENGTHS[i] for i in b) for b in batches]
    assert max(spreads) < 40
    longest = [max(LENGTHS[i] for i in b) for b in batches]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_the_batch_with_the_longest_row_comes_first_so_running_out_of_memory_shows_at_once():
    for epoch in range(3):
        batches = order(group=True, epoch=epoch)
        assert max(LENGTHS[i] for i in batches[0]) == max(LENGTHS)


def test_the_same_seed_and_epoch_give_the_same_batches_and_another_epoch_or_seed_others():
    assert order(group=True, seed=3, epoch=2) == order(group=True, seed=3, epoch=2)
    assert order(group=True, seed=3, epoch=2) != order(group=True, seed=3, epoch=1)
    assert order(group=True, seed=3, epoch=2) != order(group=True, seed=4, epoch=2)
    assert order(group=False, seed=3, epoch=0) != order(group=False, seed=3, epoch=1)


def test_auto_groups_where_it_cuts_a_tenth_of_the_padding_and_not_where_nearly_every_row_is_full():
    from mlcore.sampling import resolve_grouping, unpadded_share

    # IMDB at 512 tokens: lengths spread out, grouping halves the padded tokens.
    assert resolve_grouping("auto", LENGTHS, 16, seed=0) is True
    # IMDB at 128 tokens: nine rows in ten are cut to 128, so every batch is padded to 128 either way.
    full = [128 if i % 10 else 40 + i % 80 for i in range(2000)]
    assert resolve_grouping("auto", full, 16, seed=0) is False
    assert 1 - padded_tokens(order_of(full, True), full) / padded_tokens(order_of(full, False), full) < 0.10
    # Where unpadded batches replay from CUDA graphs, grouping them at 128 pays after all.
    assert resolve_grouping("auto", full, 16, seed=0, cuda_graphs=True) is True
    assert unpadded_share(order_of(full, True), full) > 0.8 > 0.3 > unpadded_share(order_of(full, False), full)
    # An explicit setting stands either way.
    assert resolve_grouping(False, LENGTHS, 16, seed=0) is False and resolve_grouping(True, full, 16, seed=0) is True


def order_of(lengths: list[int], group: bool) -> list[list[int]]:
    return batch_order(lengths, 16, seed=0, epoch=0, group_by_length=group)
