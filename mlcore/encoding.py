"""Texts to token ids, cut to max_length from the head of the text or from its head and tail.

"head" keeps the first max_length tokens, as the study did. "head_tail" keeps the first quarter of the budget
from the start of the text and the rest from its end: Sun et al. 2019 ("How to Fine-Tune BERT for Text
Classification?") found 128 head + 382 tail tokens best on IMDB at 512, where a review's verdict is often in
its last sentences. Both count the special tokens ([CLS], [SEP]) in max_length, as the model does.

Training, evaluation and serving all encode through here, so a model is served the way it was trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TRUNCATIONS = ("head", "head_tail")

Encoding = dict[str, list[int]]

# Texts tokenised per call: one batched Rust call is fast, and a bounded chunk keeps the untruncated ids of a
# large dataset from all being in memory at once.
_CHUNK = 2048  # texts


def encode(
    tokenizer: Any, texts: Sequence[str], max_length: int, *, truncation: str = "head"
) -> tuple[list[Encoding], list[bool]]:
    """{"input_ids": [...]} per text (special tokens included, at most max_length ids), and whether each text
    had to be cut. Padding and the attention mask are left to batching, which knows each batch's longest row.

    Only input_ids are kept: single-text classifiers read token_type_ids as all zeros, which is also what
    the models use when none are given, and a 1-filled attention mask per row would triple the memory.
    """
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got {truncation!r}")
    rows: list[Encoding] = []
    truncated: list[bool] = []
    for start in range(0, len(texts), _CHUNK):
        # No truncation here: head_tail needs the tail, and the Rust tokenizer encodes the whole text even
        # when asked to truncate. verbose=False: texts longer than the model are expected, not a mistake.
        enc = tokenizer(
            list(texts[start : start + _CHUNK]),
            truncation=False,
            return_special_tokens_mask=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        for ids, special in zip(enc["input_ids"], enc["special_tokens_mask"], strict=True):
            kept, cut = truncate(ids, special, max_length, truncation)
            rows.append({"input_ids": kept})
            truncated.append(cut)
    return rows, truncated


def truncate(ids: list[int], special: list[int], max_length: int, truncation: str) -> tuple[list[int], bool]:
    """ids (with their special tokens) cut to max_length by `truncation`; special marks the special tokens.

    The special tokens around the text ([CLS] in front, [SEP] behind for BERT) are kept; only the text
    between them is cut.
    """
    if len(ids) <= max_length:
        return ids, False
    front = _leading_ones(special)
    back = _leading_ones(special[::-1])
    text = ids[front : len(ids) - back]
    budget = max_length - front - back
    if budget < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text beside {front + back} special tokens")
    if truncation == "head":
        kept = text[:budget]
    else:
        head = min(max_length // 4, budget)  # 128 of 512, as in Sun et al.; the special tokens come off the tail
        tail = budget - head
        kept = text[:head] + (text[len(text) - tail :] if tail else [])
    return ids[:front] + kept + ids[len(ids) - back :], True


def _leading_ones(mask: list[int]) -> int:
    n = 0
    while n < len(mask) and mask[n]:
        n += 1
    return n
