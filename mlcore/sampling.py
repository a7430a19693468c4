"""Which training rows go into which batch, epoch by epoch.

An epoch's batch order is a pure function of (lengths, batch_size, seed, epoch, group_by_length), drawn from
its own RNG rather than torch's: a checkpoint only needs the epoch and the number of batches done to replay
the rest of the epoch exactly, and dropout's RNG stream is not disturbed by the shuffling.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

# Rows sorted together when grouping by length. Big enough that each batch is nearly uniform in length,
# small enough that a batch still mixes rows from all over the (shuffled) dataset, as in HF's
# LengthGroupedSampler.
MEGABATCH_BATCHES = 50  # batches per mega-batch


def batch_order(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, group_by_length: bool
) -> list[list[int]]:
    """Row indices per batch for one epoch; every row appears once, ceil(n / batch_size) batches.

    Without grouping: a seeded shuffle cut into batches. With grouping:
      1. shuffle the rows;
      2. cut them into mega-batches of MEGABATCH_BATCHES * batch_size rows and sort each by length, longest
         first, so that each batch is padded to little more than its own rows' length;
      3. cut into batches and shuffle the batch order, so that lengths do not arrive in a sawtooth; then swap
         the batch holding the longest row to the front.
    Only the last mega-batch can end in a short batch, so the batch count is the same either way.
    """
    # A string seed: random.Random hashes it deterministically (tuples are not accepted as seeds).
    rng = random.Random(f"mlcore.sampling:{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        size = MEGABATCH_BATCHES * batch_size
        # sorted() is stable, so ties keep the shuffled order and the result stays seed-determined.
        order = [i for s in range(0, len(order), size) for i in sorted(order[s : s + size], key=lambda i: -lengths[i])]
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
        # The longest batch first: one too big for the GPU's memory then fails at once, not hours in.
        longest = max(range(len(batches)), key=lambda b: lengths[batches[b][0]], default=0)
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


# "auto" groups by length only when that cuts an epoch's padded tokens by at least this share. Grouping changes
# which rows share a batch: over six seeds of the study's 24-step quick run at 128 tokens it cost 3.2 points of
# test accuracy on average (lower in 5 of 6; bench.order_noise) for 3% fewer tokens; at 512 it halves the work.
GROUPING_MIN_SAVING = 0.10
# ... or, where a batch without padding replays its training passes from a CUDA graph (mlcore.graphs), when it
# makes at least this share of all batches unpadded that were not: at 128 tokens on IMDB nearly every grouped
# batch is unpadded and nearly every plain one is padded, and a step there is bound by kernel launches.
GROUPING_MIN_UNPADDED_GAIN = 0.5


def resolve_grouping(
    setting: bool | str, lengths: Sequence[int], batch_size: int, *, seed: int, cuda_graphs: bool = False
) -> bool:
    """A config's group_by_length as a decision: True and False stand; "auto" compares the first epoch's batches
    with and without grouping: their padded tokens, and with cuda_graphs their share of batches without padding
    (see GROUPING_MIN_SAVING and GROUPING_MIN_UNPADDED_GAIN)."""
    if setting != "auto":
        return bool(setting)
    plain = batch_order(lengths, batch_size, seed=seed, epoch=0, group_by_length=False)
    grouped = batch_order(lengths, batch_size, seed=seed, epoch=0, group_by_length=True)
    if not plain:
        return False
    if padded_tokens(grouped, lengths) <= (1 - GROUPING_MIN_SAVING) * padded_tokens(plain, lengths):
        return True
    gain = unpadded_share(grouped, lengths) - unpadded_share(plain, lengths)
    return cuda_graphs and gain >= GROUPING_MIN_UNPADDED_GAIN


def unpadded_share(batches: list[list[int]], lengths: Sequence[int]) -> float:
    """The share of batches whose rows all have the same length (they need no padding, nor a mask)."""
    return sum(len({lengths[i] for i in b}) == 1 for b in batches) / max(1, len(batches))


def padded_tokens(batches: list[list[int]], lengths: Sequence[int]) -> int:
    """Tokens the model processes when each batch is padded to its longest row (the cost grouping cuts)."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)
